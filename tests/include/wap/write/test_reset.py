"""The reset before each build: nothing of earlier cycles stays in the write schema; production's incremental
models and snapshots are carried over (DuckDB: copies in one transaction; Snowflake: clones with their grants)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.fakesnow_support import FakesnowServer, point_snowflake_default
from wap.config import WapConfig, load_config
from wap.write.reset import Relation, reset_write_schema, snowflake_relations, snowflake_reset_statements
from wap.write.state import StatefulRelation

STATEFUL = [
    StatefulRelation("orders_history", "model", "model.p.orders_history"),
    StatefulRelation("status_history", "snapshot", "snapshot.p.status_history"),
    StatefulRelation("brand_new", "model", "model.p.brand_new"),
]


@pytest.fixture
def config(tmp_path: Path) -> WapConfig:
    """Production holds an incremental model, a snapshot, a table and a view; the write schema holds what a
    published cycle leaves there (the previous production, its marker) and a leftover of an older project."""
    config = load_config({"WAP_DUCKDB_PATH": str(tmp_path / "w.duckdb")})
    with duckdb.connect(str(config.duckdb_path)) as conn:
        conn.execute("create schema dwh; create schema develop_dwh")
        conn.execute("create table dwh.orders_history as select range as id, 'b' || range as batch from range(5)")
        conn.execute("create table dwh.status_history as select 1 as customer_id, 'gold' as status")
        conn.execute("create table dwh.mart as select 1 as x")
        conn.execute("create view dwh.stg as select * from mart")
        conn.execute("create table develop_dwh.orders_history as select range as id, 'b' as batch from range(2)")
        conn.execute("create table develop_dwh.mart as select 0 as x")
        conn.execute("create view develop_dwh.stg as select * from mart")
        conn.execute("create table develop_dwh.dropped_from_the_project as select 1 as x")
        conn.execute("create table develop_dwh._wap_marker as select 'run' as run_id")
    return config


def _relations(config: WapConfig, schema: str) -> dict[str, list[tuple]]:
    with duckdb.connect(str(config.duckdb_path), read_only=True) as conn:
        names = conn.execute(
            "select table_name from duckdb_tables() where schema_name = ? union all "
            "select view_name from duckdb_views() where schema_name = ? and not internal",
            [schema, schema],
        ).fetchall()
        return {name: sorted(conn.execute(f'select * from "{schema}"."{name}"').fetchall()) for (name,) in names}


def test_duckdb_the_write_schema_holds_production_state_and_nothing_else(config: WapConfig) -> None:
    production = _relations(config, "dwh")
    result = reset_write_schema(config, STATEFUL)
    assert set(result.dropped) == {"orders_history", "mart", "stg", "dropped_from_the_project", "_wap_marker"}
    assert result.carried == ("orders_history", "status_history") and result.new == ("brand_new",)
    assert _relations(config, "develop_dwh") == {
        "orders_history": production["orders_history"],
        "status_history": production["status_history"],
    }
    assert _relations(config, "dwh") == production, "production is only read"


def test_duckdb_a_full_refresh_carries_only_what_it_is_given(config: WapConfig) -> None:
    result = reset_write_schema(config, [STATEFUL[1]])
    assert result.carried == ("status_history",)
    assert set(_relations(config, "develop_dwh")) == {"status_history"}


def test_duckdb_an_empty_warehouse_gets_an_empty_write_schema(tmp_path: Path) -> None:
    config = load_config({"WAP_DUCKDB_PATH": str(tmp_path / "empty.duckdb")})
    result = reset_write_schema(config, STATEFUL)
    assert (result.dropped, result.carried) == ((), ())
    assert result.new == ("orders_history", "status_history", "brand_new")
    assert _relations(config, "develop_dwh") == {}


def test_duckdb_a_reset_that_fails_changes_nothing(config: WapConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _relations(config, "develop_dwh")
    with duckdb.connect(str(config.duckdb_path)) as conn:  # production's copy cannot be made: a name it lacks
        conn.execute("create view dwh.status_history_v as select 1")
    monkeypatch.setattr("wap.write.reset.carried_from", lambda production, stateful: [Relation("missing", "TABLE")])
    with pytest.raises(duckdb.CatalogException):
        reset_write_schema(config, STATEFUL)
    assert _relations(config, "develop_dwh") == before, "one transaction: the drops are rolled back too"


def test_snowflake_statements_drop_views_first_then_clone_with_grants() -> None:
    existing = [
        Relation("ORDERS_HISTORY", "BASE TABLE", True),
        Relation("STG", "VIEW"),
        Relation("MV", "MATERIALIZED VIEW"),
    ]
    carried = [Relation("ORDERS_HISTORY", "BASE TABLE", True), Relation("Status History", "BASE TABLE", False)]
    assert snowflake_reset_statements("analytics", "develop_dwh", "dwh", existing, carried) == [
        'drop view if exists "ANALYTICS"."DEVELOP_DWH"."STG"',
        'drop materialized view if exists "ANALYTICS"."DEVELOP_DWH"."MV"',
        'drop table if exists "ANALYTICS"."DEVELOP_DWH"."ORDERS_HISTORY"',
        'create transient table "ANALYTICS"."DEVELOP_DWH"."ORDERS_HISTORY" clone "ANALYTICS"."DWH"."ORDERS_HISTORY" '
        "copy grants",
        'create table "ANALYTICS"."DEVELOP_DWH"."Status History" clone "ANALYTICS"."DWH"."Status History" copy grants',
    ]


@pytest.fixture
def snowflake_config(
    fakesnow_server: FakesnowServer, fakesnow_database: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WapConfig]:
    point_snowflake_default(monkeypatch, fakesnow_server, fakesnow_database)
    with fakesnow_server.connect(fakesnow_database) as conn, conn.cursor() as cursor:
        for sql in (
            f"create schema {fakesnow_database}.dwh",
            f"create schema {fakesnow_database}.develop_dwh",
            f"create table {fakesnow_database}.dwh.orders_history (id int, batch varchar)",
            f"insert into {fakesnow_database}.dwh.orders_history values (1, 'b1'), (2, 'b2')",
            f"create table {fakesnow_database}.dwh.mart (x int)",
            f"create table {fakesnow_database}.develop_dwh.orders_history (id int, batch varchar)",
            f"create view {fakesnow_database}.develop_dwh.stg as select 1 as x",
            f"create table {fakesnow_database}.develop_dwh.leftover (x int)",
        ):
            cursor.execute(sql)
    yield load_config({"WAP_WAREHOUSE": "snowflake", "WAP_DATABASE": fakesnow_database})


def test_snowflake_reset_on_fakesnow(snowflake_config: WapConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """fakesnow lists and drops as Snowflake does, but cannot parse ``CLONE ... COPY GRANTS``: the clone statement
    is recorded as sent, then run without ``COPY GRANTS`` (which fakesnow runs as a copy) to check the data."""
    from wap.warehouse import snowflake as snowflake_warehouse

    sent: list[str] = []
    fetch_all = snowflake_warehouse.fetch_all

    def recording(cursor: object, sql: str, params: list) -> list[tuple]:
        sent.append(sql)
        return fetch_all(cursor, sql.removesuffix(" copy grants"), params)

    monkeypatch.setattr(snowflake_warehouse, "fetch_all", recording)
    result = reset_write_schema(snowflake_config, STATEFUL)
    database = snowflake_config.snowflake_database
    assert set(result.dropped) == {"ORDERS_HISTORY", "STG", "LEFTOVER"}
    assert result.carried == ("ORDERS_HISTORY",) and result.new == ("status_history", "brand_new")
    name = '"ORDERS_HISTORY"'
    assert sent[-1] == f'create table "{database}"."DEVELOP_DWH".{name} clone "{database}"."DWH".{name} copy grants'
    with snowflake_warehouse.SnowflakeWarehouse(snowflake_config).session() as query:
        assert set(snowflake_relations(query, "develop_dwh")) == {"ORDERS_HISTORY"}
        assert sorted(query(f"select * from {database}.develop_dwh.orders_history", [])) == [(1, "b1"), (2, "b2")]
