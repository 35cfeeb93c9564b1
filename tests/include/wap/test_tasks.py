"""The preflight task: malformed settings, a missing connection or warehouse fail the run before anything is
written, with a message that says what to fix. The publish and rollback tasks announce what they put into
production; the example consumer reads it."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.context import OutletEventAccessors

from wap import tasks
from wap.audit.dialect import DIALECTS
from wap.audit.marker import current_fingerprints, write_duckdb_marker
from wap.config import load_config
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
