"""The audit history table on a DuckDB file and on Snowflake (fakesnow's server, through the real connector)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.include.wap.warehouse.test_snowflake import snowflake_config
from wap.audit.dialect import DIALECTS
from wap.audit.marker import current_fingerprints, write_marker
from wap.config import ConfigError, load_config
from wap.history import HISTORY_TABLE, AuditHistory
from wap.history.table import COLUMN_NAMES, INSERT_BATCH
from wap.publish.duckdb import DuckDBPublisher
from wap.warehouse.duckdb import DuckDBWarehouse
from wap.warehouse.snowflake import SnowflakeWarehouse

DAG = "wap_dwh"
T0 = datetime(2026, 1, 2, 6, 0, tzinfo=timezone.utc)


def duckdb_warehouse(path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(load_config({"WAP_DUCKDB_PATH": str(path)}))


@pytest.fixture(params=["duckdb", "snowflake"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> DuckDBWarehouse | SnowflakeWarehouse:
    """A fresh warehouse of each kind, without the history table."""
    if request.param == "duckdb":
        return duckdb_warehouse(tmp_path / "w.duckdb")
    return SnowflakeWarehouse(snowflake_config(request.getfixturevalue("snowflake_default")))


def cycle(
    run_id: str, hours: int, relations: Sequence[str] = ("orders", "customers"), *, dag_id: str = DAG
) -> list[dict[str, Any]]:
    """History rows of one audited run, ``hours`` after T0; figures derived from the hour and the relation."""
    return [
        {
            "dag_id": dag_id,
            "run_id": run_id,
            "review_id": f"rv-{run_id}",
            "audited_at": T0 + timedelta(hours=hours),
            "relation": name,
            "status": "changed",
            "rows_before": 100,
            "rows_after": 100 + hours,
            "rows_added": hours,
            "rows_removed": index,
            "rows_changed": None,
            "columns_added": 1,
            "columns_removed": 0,
            "columns_retyped": 0,
            "tests_warned": 0,
            "tests_failed": 0,
            "outcome": "open",
            "decided_by": None,
            "decided_at": None,
            "rules": None,
        }
        for index, name in enumerate(relations)
    ]


def runs(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(run, outcome) per run in the order the rows come."""
    seen: list[tuple[str, str]] = []
    for row in rows:
        if not seen or seen[-1][0] != row["run_id"]:
            seen.append((row["run_id"], row["outcome"]))
    return seen


def test_records_cycles_and_reads_them_newest_first(warehouse) -> None:
    history = AuditHistory(warehouse)
    history.record_audit(cycle("r1", 1))
    history.record_audit(cycle("r2", 2))
    rows = history.recent(DAG, cycles=5)
    assert [(row["run_id"], row["relation"]) for row in rows] == [
        ("r2", "customers"),
        ("r2", "orders"),
        ("r1", "customers"),
        ("r1", "orders"),
    ]
    assert set(rows[0]) == set(COLUMN_NAMES)
    assert rows[1] == {**cycle("r2", 2)[0], "audited_at": "2026-01-02T08:00:00+00:00"}
    assert runs(history.recent(DAG, cycles=1)) == [("r2", "open")]
    assert runs(history.recent(DAG, cycles=5, exclude_run_id="r2")) == [("r1", "not published")]
    assert history.recent("other_dag", cycles=5) == []


def test_outcomes_filter_the_runs_before_the_window(warehouse) -> None:
    history = AuditHistory(warehouse)
    for index in range(1, 5):
        history.record_audit(cycle(f"r{index}", index))
        history.set_outcome(DAG, f"r{index}", "published" if index % 2 else "not published")
    assert runs(history.recent(DAG, cycles=2, outcomes=["published"])) == [("r3", "published"), ("r1", "published")]
    assert runs(history.recent(DAG, cycles=1, outcomes=["published", "not published"])) == [("r4", "not published")]
    assert history.recent(DAG, cycles=2, outcomes=[]) == []
    assert history.recent(DAG, cycles=0) == []


def test_a_retried_audit_replaces_its_rows(warehouse) -> None:
    history = AuditHistory(warehouse)
    history.record_audit(cycle("r1", 1, ["orders", "customers", "gone"]))
    history.record_audit(cycle("r1", 3, ["orders"]))
    rows = history.recent(DAG, cycles=5)
    assert [(row["run_id"], row["relation"], row["rows_added"]) for row in rows] == [("r1", "orders", 3)]
    assert rows[0]["outcome"] == "open"


def test_a_new_audit_ends_the_earlier_pending_reviews(warehouse) -> None:
    history = AuditHistory(warehouse)
    history.record_audit(cycle("r1", 1))
    history.set_outcome(DAG, "r1", "published", decided_by="alice")
    history.record_audit(cycle("r2", 2))
    history.set_outcome(DAG, "r2", "approved", decided_by="policy", rules=["small_change"])
    history.record_audit(cycle("r3", 3))
    history.record_audit(cycle("other", 4, dag_id="other_dag"))  # another DAG's audit leaves this one's alone
    history.record_audit(cycle("r4", 5))
    assert runs(history.recent(DAG, cycles=5)) == [
        ("r4", "open"),
        ("r3", "not published"),
        ("r2", "not published"),
        ("r1", "published"),
    ]
    (r2,) = [row for row in history.recent(DAG, cycles=5) if row["run_id"] == "r2" and row["relation"] == "orders"]
    assert r2["decided_by"] == "policy" and r2["rules"] == '["small_change"]' and r2["decided_at"] is not None
    assert runs(history.recent("other_dag", cycles=5)) == [("other", "open")]


def test_set_outcome_records_the_decision(warehouse) -> None:
    history = AuditHistory(warehouse)
    history.record_audit(cycle("r1", 1))
    before = datetime.now(timezone.utc).replace(microsecond=0)
    assert history.set_outcome(DAG, "r1", "published", decided_by="alice", rules=["no_removals", "small"]) == 2
    rows = history.recent(DAG, cycles=1)
    assert {(row["outcome"], row["decided_by"], row["rules"]) for row in rows} == {
        ("published", "alice", '["no_removals", "small"]')
    }
    decided_at = datetime.fromisoformat(rows[0]["decided_at"])
    assert decided_at.utcoffset() == timedelta(0)
    assert before <= decided_at <= datetime.now(timezone.utc) + timedelta(seconds=1)
    # Idempotent: the same outcome again changes nothing, not even the time of the decision.
    assert history.set_outcome(DAG, "r1", "published") == 2
    assert history.recent(DAG, cycles=1) == rows
    assert history.set_outcome(DAG, "r1", "rolled back", decided_by="bob") == 2
    (rolled,) = {(row["outcome"], row["decided_by"], row["rules"]) for row in history.recent(DAG, cycles=1)}
    assert rolled == ("rolled back", "bob", '["no_removals", "small"]')
    assert history.set_outcome(DAG, "unknown", "published") == 0
    with pytest.raises(ValueError, match="not one of"):
        history.set_outcome(DAG, "r1", "shipped")


def test_a_failed_record_changes_nothing(warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    history = AuditHistory(warehouse)
    history.record_audit(cycle("r1", 1))
    recorded = history.recent(DAG, cycles=5)
    with monkeypatch.context() as patch:  # the last statement (the pruning) fails, after the delete and insert
        patch.setattr(
            AuditHistory, "_newest_runs", lambda self, where, cycles: f"select 1 from no_such_table where {where}"
        )
        with pytest.raises(Exception, match=r"(?i)no_such_table"):
            history.record_audit(cycle("r1", 2, ["orders"]))
    assert history.recent(DAG, cycles=5) == recorded


def test_keeps_the_newest_cycles(warehouse) -> None:
    history = AuditHistory(warehouse, keep_cycles=3)
    for index in range(1, 6):
        history.record_audit(cycle(f"r{index}", index))
    history.record_audit(cycle("other", 0, dag_id="other_dag"))  # the oldest row overall, of another DAG
    assert [run for run, _ in runs(history.recent(DAG, cycles=10))] == ["r5", "r4", "r3"]
    assert [run for run, _ in runs(history.recent("other_dag", cycles=10))] == ["other"]


def test_many_relations_are_inserted_in_batches(warehouse) -> None:
    names = [f"model_{index:03d}" for index in range(INSERT_BATCH + 30)]
    history = AuditHistory(warehouse)
    history.record_audit(cycle("r1", 1, names))
    rows = history.recent(DAG, cycles=1)
    assert [row["relation"] for row in rows] == names
    assert rows[-1]["rows_removed"] == len(names) - 1


def test_a_fresh_warehouse_has_no_history(warehouse) -> None:
    history = AuditHistory(warehouse)
    assert history.recent(DAG, cycles=5) == []
    assert history.set_outcome(DAG, "r1", "published") == 0
    assert history.recent(DAG, cycles=5) == []


def test_a_duckdb_file_that_does_not_exist_is_not_created(tmp_path: Path) -> None:
    history = AuditHistory(duckdb_warehouse(tmp_path / "none" / "w.duckdb"))
    assert history.recent(DAG, cycles=5) == []
    assert history.set_outcome(DAG, "r1", "published") == 0
    assert not (tmp_path / "none").exists()


def test_audit_times_are_stored_in_utc(warehouse) -> None:
    history = AuditHistory(warehouse)
    rows = cycle("r1", 0, ["orders"])
    rows[0]["audited_at"] = datetime(2026, 1, 2, 8, 30, tzinfo=timezone(timedelta(hours=2)))
    history.record_audit(rows)
    assert history.recent(DAG, cycles=1)[0]["audited_at"] == "2026-01-02T06:30:00+00:00"


@pytest.mark.parametrize(
    ("schema", "keep_cycles", "message"),
    [
        ("wap history", 60, "WAP_HISTORY_SCHEMA='wap history' is not a valid SQL identifier"),
        ('x"; drop schema dwh; --', 60, "not a valid SQL identifier"),
        ("DWH", 60, "a schema that publish swaps"),
        ("develop_dwh", 60, "a schema that publish swaps"),
        ("wap_history", 0, "WAP_HISTORY_CYCLES=0"),
    ],
)
def test_refuses_a_bad_configuration(tmp_path: Path, schema: str, keep_cycles: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AuditHistory(duckdb_warehouse(tmp_path / "w.duckdb"), schema=schema, keep_cycles=keep_cycles)


def test_identifiers_per_dialect(tmp_path: Path) -> None:
    assert AuditHistory(duckdb_warehouse(tmp_path / "w.duckdb")).table == '"wap_history"."audit_history"'
    snowflake = AuditHistory(SnowflakeWarehouse(snowflake_config("analytics")), schema="audit")
    assert snowflake.table == '"ANALYTICS"."AUDIT"."AUDIT_HISTORY"'


def test_the_table_on_snowflake_resolves_unquoted(snowflake_default: str) -> None:
    warehouse = SnowflakeWarehouse(snowflake_config(snowflake_default))
    AuditHistory(warehouse).record_audit(cycle("r1", 1))
    with warehouse.session() as query:
        assert query("select count(*) from wap_history.audit_history where outcome = %s", ["open"]) == [(2,)]


# -- the table survives a publish and a rollback ------------------------------------------------------------------


def test_the_history_survives_a_publish_and_a_rollback(tmp_path: Path) -> None:
    warehouse = duckdb_warehouse(tmp_path / "w.duckdb")
    with warehouse.connect() as conn:
        conn.execute("create schema develop_dwh; create schema dwh")
        conn.execute("create table develop_dwh.orders as select range as id from range(4)")
        conn.execute("create table dwh.orders as select range as id from range(3)")
    with warehouse.session() as query:
        fingerprints = current_fingerprints(query, DIALECTS["duckdb"], "develop_dwh")
    write_marker(
        warehouse,
        run_id="r2",
        review_id="rv-r2",
        fingerprints=[("*", None, None)] + [(name, count, digest) for name, (count, digest) in fingerprints.items()],
    )
    history = AuditHistory(warehouse)
    history.record_audit(cycle("r1", 1, ["orders"]))
    history.set_outcome(DAG, "r1", "published")
    history.record_audit(cycle("r2", 2, ["orders"]))
    recorded = history.recent(DAG, cycles=5)

    publisher = DuckDBPublisher(warehouse)
    assert publisher.publish(run_id="r2", review_id="rv-r2").outcome == "published"
    assert history.recent(DAG, cycles=5) == recorded
    history.set_outcome(DAG, "r2", "published")
    published = history.recent(DAG, cycles=5)

    publisher.rollback()
    assert history.recent(DAG, cycles=5) == published
    with duckdb.connect(str(warehouse.config.duckdb_path), read_only=True) as conn:
        assert conn.execute("select count(*) from dwh.orders").fetchone() == (3,)  # rolled back indeed
        tables = conn.execute(
            "select table_schema from information_schema.tables where table_name = ?", [HISTORY_TABLE]
        ).fetchall()
    assert tables == [("wap_history",)]


def test_the_history_survives_the_swapped_schemas_being_dropped(warehouse) -> None:
    history = AuditHistory(warehouse)
    history.record_audit(cycle("r1", 1))
    recorded = history.recent(DAG, cycles=5)
    with warehouse.session() as query:
        for statement in (
            "create schema develop_dwh",
            "create schema dwh",
            "drop schema develop_dwh cascade",
            "drop schema dwh cascade",
            "create schema develop_dwh",
            "create schema dwh",
        ):
            query(statement, [])
    assert history.recent(DAG, cycles=5) == recorded
