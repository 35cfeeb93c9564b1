"""The preflight task: malformed settings, a missing connection or warehouse fail the run before anything is
written, with a message that says what to fix. The publish and rollback tasks announce what they put into
production; the example consumer reads it."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.context import OutletEventAccessors

from wap import tasks
from wap.audit.dialect import DIALECTS
from wap.audit.marker import current_fingerprints, write_duckdb_marker
from wap.config import load_config
from wap.history import AuditHistory, cycle_rows
from wap.publish.assets import published_alias, relation_uri
from wap.warehouse.duckdb import DuckDBWarehouse


def test_preflight_passes_on_a_reachable_warehouse(monkeypatch, tmp_path) -> None:
    import duckdb

    path = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(path)).close()
    monkeypatch.setenv("WAP_DUCKDB_PATH", str(path))
    assert tasks.preflight()["write_schema"] == "develop_dwh"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"WAP_WRITE_SCHEMA": "develop-dwh"},
            "WAP preflight: WAP_WRITE_SCHEMA='develop-dwh' is not a valid SQL identifier",
        ),
        ({"WAP_WAREHOUSE": "bigquery"}, "WAP preflight: WAP_WAREHOUSE='bigquery' is not a known warehouse"),
        ({"WAP_WAREHOUSE": "snowflake"}, "WAP_WAREHOUSE='snowflake' needs WAP_DATABASE"),
        (
            {"WAP_WAREHOUSE": "snowflake", "WAP_DATABASE": "ANALYTICS", "WAP_SNOWFLAKE_CONN_ID": "no_such_connection"},
            "WAP preflight: cannot reach the snowflake warehouse through connection 'no_such_connection'",
        ),
    ],
)
def test_preflight_fails_clearly_before_anything_is_written(monkeypatch, tmp_path, env, message) -> None:
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("WAP_DUCKDB_PATH", str(path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(AirflowFailException, match=message.replace("(", r"\(")):
        tasks.preflight()
    assert not path.exists()  # nothing was created, let alone written


def test_preflight_refuses_a_missing_embedded_warehouse(monkeypatch, tmp_path) -> None:
    path = tmp_path / "nowhere" / "warehouse.duckdb"
    monkeypatch.setenv("WAP_DUCKDB_PATH", str(path))
    with pytest.raises(AirflowFailException, match="the file does not exist"):
        tasks.preflight()
    assert not path.parent.exists()


# -- publish and rollback announce what they put into production (Airflow Assets) ------------------------------
RUN, REVIEW = "manual__2026-01-02", "0123456789ab"


class _TaskInstance:
    """What the publish task pulls: the approval's decision and the audit's report."""

    def __init__(self, report: dict) -> None:
        self.report = report

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> object:
        if task_ids == "await_approval":
            return {"decision": "approve", "review_id": REVIEW}
        return self.report if task_ids == "audit" else None


class _DagRun:
    dag_id, run_id = "wap_dwh", RUN
    run_after = datetime(2026, 1, 2, tzinfo=timezone.utc)


class _InletEvents:
    """``inlet_events`` of the publish task: what Airflow recorded of the outlet events it was given."""

    def __init__(self, recorded: list) -> None:
        self.recorded = recorded

    def __getitem__(self, alias: object) -> _InletEvents:
        return self

    def after(self, since: object) -> list:
        return self.recorded


def _announced(outlet_events: OutletEventAccessors) -> list[tuple[str, str, str, str | None]]:
    accessor = outlet_events[published_alias("wap_dwh")]
    return [
        (e.extra["relation"], e.extra["status"], e.extra["action"], e.extra["review_id"])
        for e in accessor.asset_alias_events
    ]


@pytest.fixture
def built(monkeypatch, tmp_path) -> DuckDBWarehouse:
    """develop_dwh holds the audited build of RUN (t changed, u unchanged); dwh the production of run manual__2025."""
    monkeypatch.setenv("WAP_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    wh = DuckDBWarehouse(load_config())
    with wh.connect() as conn:
        conn.execute("create schema develop_dwh; create schema dwh")
        conn.execute("create table develop_dwh.t as select range as id from range(4)")
        conn.execute("create table develop_dwh.u as select 1 as x")
        conn.execute("create table dwh.t as select range as id from range(3)")
        conn.execute("create table dwh.u as select 1 as x")
    for schema, run_id, review_id in (("develop_dwh", RUN, REVIEW), ("dwh", "manual__2025", "aaaaaaaaaaaa")):
        with wh.session() as query:
            fingerprints = current_fingerprints(query, DIALECTS["duckdb"], schema)
        rows = [("*", None, None)] + [(n, c, h) for n, (c, h) in fingerprints.items()]
        with wh.transaction() as conn:
            write_duckdb_marker(conn, schema, run_id, review_id, rows)
    return wh


REPORT = {"relations": [{"name": "t", "status": "changed"}, {"name": "u", "status": "unchanged"}]}


def test_publish_announces_the_changed_relations_once_and_a_rollback_announces_them_again(built) -> None:
    outlet_events = OutletEventAccessors()
    result = tasks.publish(_TaskInstance(REPORT), RUN, _DagRun(), outlet_events, _InletEvents([]))
    assert result["outcome"] == "published"
    assert _announced(outlet_events) == [("t", "changed", "publish", REVIEW)]
    assert result["announced"][0]["uri"] == relation_uri(load_config(), "t")

    # A retry after that try succeeded: Airflow holds its events, so nothing is announced again.
    event = SimpleNamespace(source_dag_id="wap_dwh", source_run_id=RUN)
    again = OutletEventAccessors()
    result = tasks.publish(_TaskInstance(REPORT), RUN, _DagRun(), again, _InletEvents([event]))
    assert result["outcome"] == "already published" and result["announced"] == [] and _announced(again) == []
    # A retry after a try that swapped and was killed before it succeeded: this try announces the publish.
    late = OutletEventAccessors()
    tasks.publish(_TaskInstance(REPORT), RUN, _DagRun(), late, _InletEvents([]))
    assert _announced(late) == [("t", "changed", "publish", REVIEW)]

    back = OutletEventAccessors()
    result = tasks.rollback("manual__rollback", back)
    assert (result["restored_run_id"], result["withdrawn_run_id"]) == ("manual__2025", RUN)
    assert _announced(back) == [("t", "changed", "rollback", "aaaaaaaaaaaa")]
    (extra,) = [e.extra for e in back[published_alias("wap_dwh")].asset_alias_events]
    assert extra["run_id"] == "manual__2025" and extra["rollback_run_id"] == "manual__rollback"


def test_the_example_consumer_reads_the_relation_its_event_names(built, caplog) -> None:
    event = SimpleNamespace(extra={"relation": "t", "action": "publish", "run_id": RUN, "review_id": REVIEW})
    with caplog.at_level("INFO", logger="wap.tasks"):
        result = tasks.count_published_rows("t", {"asset": [event]})
    assert result == {"relation": "t", "rows": 3, "action": "publish", "run_id": RUN, "review_id": REVIEW}
    assert f"dwh.t has 3 rows, as the publish of run {RUN} (review {REVIEW}) left it" in caplog.text
    assert tasks.count_published_rows("u", {})["rows"] == 1  # triggered by hand: the configured relation


def test_publish_and_rollback_record_their_outcome_in_the_history_outside_both_schemas(built) -> None:
    config = load_config()
    history = AuditHistory(built, config.history_schema)
    report = {"dag_id": "wap_dwh", "run_id": RUN, "relations": [_relation("t", 3, 4, added=1)], "dbt_tests": []}
    history.record_audit(cycle_rows(report, review_id=REVIEW, audited_at=datetime.now(timezone.utc)))
    decision = {"decision": "approve", "review_id": REVIEW, "decided_by": "alice"}
    ti = _TaskInstance(REPORT)
    ti.xcom_pull = lambda task_ids, key="return_value": decision if task_ids == "await_approval" else REPORT
    tasks.publish(ti, RUN, _DagRun(), OutletEventAccessors(), _InletEvents([]))
    assert _outcomes(history) == {RUN: ("published", "alice")}
    tasks.rollback("manual__rollback", OutletEventAccessors())
    assert _outcomes(history) == {RUN: ("rolled back", "alice")}
    assert [row["relation"] for row in history.recent("wap_dwh", cycles=5)] == ["t"]  # swapped twice, still there


# -- the review policy: the audit decides, as a person would, when every rule holds ------------------------------
POLICY = """
version: 1
rules:
  no_removed_relations: true
  limits:
    - relations: "*"
      rows_removed: 0
  rows_added_in_recent_range:
    cycles: 3
    min_cycles: 1
    tolerance: "10%"
"""


def _relation(name: str, before: int, after: int, *, added: int = 0, removed: int = 0) -> dict:
    rows = {"before": before, "after": after, "added": added, "removed": removed, "changed": 0}
    return {"name": name, "status": "changed" if added or removed else "unchanged", "rows": rows, "columns": {}}


def _report(run_id: str, review_id: str, *relations: dict) -> dict:
    relations = relations or (_relation("t", 100, 110, added=10),)
    return {"dag_id": "wap_dwh", "run_id": run_id, "review_id": review_id, "relations": list(relations)}


def _outcomes(history: AuditHistory) -> dict[str, tuple[str, str | None]]:
    return {row["run_id"]: (row["outcome"], row["decided_by"]) for row in history.recent("wap_dwh", cycles=10)}


class _Variables:
    """Airflow's Variables as the Task SDK sets them, in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.history: list[tuple[str, str]] = []

    def set(self, key: str, value: str, description: str | None = None) -> None:
        self.values[key] = value
        self.history.append((key, value))


@pytest.fixture
def with_policy(monkeypatch, tmp_path) -> _Variables:
    """A policy file, an embedded warehouse, the Task SDK's Variables in a dict; ``tasks.audit`` reports what
    ``run_audit`` is given to return."""
    policy = tmp_path / "wap_policy.yml"
    policy.write_text(POLICY, encoding="utf-8")
    monkeypatch.setenv("WAP_POLICY_FILE", str(policy))
    monkeypatch.setenv("WAP_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    variables = _Variables()
    monkeypatch.setattr("airflow.sdk.Variable", variables)
    return variables


class _AuditInstance:
    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value

    def xcom_pull(self, **kwargs: object) -> list:
        return []


def _audit(monkeypatch, report: dict) -> _AuditInstance:
    monkeypatch.setattr("wap.audit.stage.run_audit", lambda config, run_id, dbt_tests: report)
    ti = _AuditInstance()
    assert tasks.audit(ti, report["run_id"], test_rows_task_id="write.build") == report
    return ti


def test_the_audit_opens_the_review_and_leaves_it_to_a_person_without_history(monkeypatch, with_policy) -> None:
    ti = _audit(monkeypatch, _report("run_1", "aaaaaaaaaaa1"))
    verdict = ti.pushed["policy"]["verdict"]
    assert verdict["publish"] is False and verdict["failed"] == [
        "rows added in the range of the last 3 published cycles (±10%)"
    ]
    assert with_policy.values == {"wap_approval__wap_dwh": "pending aaaaaaaaaaa1"}
    history = AuditHistory(DuckDBWarehouse(load_config()), "wap_history")
    assert _outcomes(history) == {"run_1": ("open", None)}


def test_a_routine_cycle_is_approved_by_policy_through_the_approval_variable(monkeypatch, with_policy) -> None:
    config = load_config()
    history = AuditHistory(DuckDBWarehouse(config), "wap_history")
    _audit(monkeypatch, _report("run_1", "aaaaaaaaaaa1"))
    history.set_outcome("wap_dwh", "run_1", "published", decided_by="alice")

    ti = _audit(monkeypatch, _report("run_2", "aaaaaaaaaaa2", _relation("t", 110, 121, added=11)))
    verdict = ti.pushed["policy"]["verdict"]
    assert verdict["publish"] is True and verdict["failed"] == [], verdict
    # Opened like any review, then approved exactly as `wap approve` does: the value and who decided.
    assert with_policy.history[-3:][0] == ("wap_approval__wap_dwh", "pending aaaaaaaaaaa2")
    assert with_policy.values["wap_approval__wap_dwh"] == "approve aaaaaaaaaaa2"
    record = json.loads(with_policy.values["wap_approval__wap_dwh__by"])
    assert record["user"] == "policy" and record["review_id"] == "aaaaaaaaaaa2" and record["verb"] == "approve"
    assert record["rules"] == verdict["held"]
    assert _outcomes(history) == {"run_1": ("published", "alice"), "run_2": ("approved", "policy")}
    shown = ti.pushed["policy"]["history"]
    assert [cycle["run_id"] for cycle in shown["cycles"]] == ["run_1", "run_2"]
    assert shown["relations"]["t"]["added"] == [10, 11]


def test_a_cycle_breaking_a_rule_waits_and_its_figures_are_flagged(monkeypatch, with_policy) -> None:
    history = AuditHistory(DuckDBWarehouse(load_config()), "wap_history")
    _audit(monkeypatch, _report("run_1", "aaaaaaaaaaa1"))
    history.set_outcome("wap_dwh", "run_1", "published")
    ti = _audit(monkeypatch, _report("run_2", "aaaaaaaaaaa2", _relation("t", 110, 118, added=10, removed=2)))
    verdict = ti.pushed["policy"]["verdict"]
    assert verdict["publish"] is False and verdict["failed"] == ["rows_removed <= 0 (*)"]
    (detail,) = [rule["detail"] for rule in verdict["rules"] if not rule["held"]]
    assert detail == "t: 2 rows removed (limit 0)"
    assert with_policy.values["wap_approval__wap_dwh"] == "pending aaaaaaaaaaa2"
    assert ti.pushed["policy"]["unusual"] == {"t": ["2 rows removed, outside 0-0 of the last 1 published cycle"]}

    # The reject ends the review in the history at once (the next audit would otherwise close it).
    decision = {"decision": "reject", "review_id": "aaaaaaaaaaa2", "decided_by": "bob"}
    context = {"run_id": "run_2", "ti": SimpleNamespace(xcom_pull=lambda task_ids, key: decision)}
    tasks.review_closed(context)
    assert _outcomes(history)["run_2"] == ("not published", "bob")


def test_a_policy_broken_after_the_dag_was_imported_leaves_the_review_to_a_person(monkeypatch, with_policy) -> None:
    load_config().policy_path.write_text("version: 1\nrules:\n  no_removed_relations: maybe\n", encoding="utf-8")
    ti = _audit(monkeypatch, _report("run_1", "aaaaaaaaaaa1"))
    verdict = ti.pushed["policy"]["verdict"]
    assert verdict["publish"] is False and "rules.no_removed_relations" in verdict["error"], verdict
    assert with_policy.values == {"wap_approval__wap_dwh": "pending aaaaaaaaaaa1"}


def test_without_a_policy_file_every_review_waits(monkeypatch, with_policy) -> None:
    load_config().policy_path.unlink()
    ti = _audit(monkeypatch, _report("run_1", "aaaaaaaaaaa1"))
    assert ti.pushed["policy"]["verdict"] is None
    assert with_policy.values == {"wap_approval__wap_dwh": "pending aaaaaaaaaaa1"}


def test_a_policy_approval_passes_the_same_publish_guards(built) -> None:
    """Approved by policy, then the build changed after the audit: the publish refuses it, as a person's approval."""
    with built.connect() as conn:
        conn.execute("insert into develop_dwh.t values (99)")
    ti = _TaskInstance(REPORT)
    decision = {"decision": "approve", "review_id": REVIEW, "decided_by": "policy"}
    ti.xcom_pull = lambda task_ids, key="return_value": decision if task_ids == "await_approval" else REPORT
    with pytest.raises(AirflowFailException) as refused:
        tasks.publish(ti, RUN, _DagRun(), OutletEventAccessors(), _InletEvents([]))
    assert "develop_dwh changed after review 0123456789ab was audited (t has 5 rows, audited 4)" in str(refused.value)
    with built.connect(read_only=True) as conn:
        assert conn.execute("select count(*) from dwh.t").fetchone() == (3,)
