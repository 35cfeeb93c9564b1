"""The own-project path on the Snowflake dialect, on fakesnow: dbt-snowflake builds the shop project (seeds, views
over ref(), an incremental model, a snapshot, a versioned model, a local package, a stored-failures test) with the
profile the bundle maps from ``snowflake_default``; its views name their neighbours relatively; the audit reports
every relation, never the stored failures; then ``reset_write`` empties the write schema and clones production's
incremental model and snapshot into it.

What fakesnow cannot run: ``CREATE TABLE ... CLONE ... COPY GRANTS`` (the statement is asserted as sent, then run
without ``COPY GRANTS``, which fakesnow runs as a copy, as in ``tests/include/wap/write/test_reset.py``); the schema
swap (production here is the first build's tables, copied); and dbt-snowflake's incremental and snapshot merges
(``create temporary ... "<db>"."<schema>"."<name>__dbt_tmp"``, which fakesnow refuses), so dbt extending the clones
is run on DuckDB (``tests/e2e/test_own_project_cycles.py``) and on a real account (``tests/live``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fakesnow_support import FakesnowServer, drop_database, new_database_name, point_snowflake_default
from tests.shop_support import RELATIONS, SHOP, load_batch_sql
from tests.snowflake_support import dbt_build
from wap.audit.stage import run_audit
from wap.config import WapConfig, load_config
from wap.dbt.prepare import prepare
from wap.dbt.project import prepared_project
from wap.warehouse import snowflake as snowflake_warehouse
from wap.warehouse.snowflake import SnowflakeWarehouse
from wap.write.reset import reset_write_schema
from wap.write.state import load_stateful_relations

pytestmark = pytest.mark.integration

RUN_ID = "manual__2026-12-01T12:00:00+00:00"


@dataclass(frozen=True)
class Cycle:
    config: WapConfig
    warehouse: SnowflakeWarehouse
    database: str
    sent: list[str]
    reset: Any
    report: dict[str, Any]
    views: dict[str, str]


VIEWS = "select table_name, view_definition from information_schema.views where lower(table_schema) = 'develop_dwh'"


def query_of(warehouse: SnowflakeWarehouse, sql: str) -> dict:
    with warehouse.session(read_only=True) as run:
        return dict(run(sql, []))


@pytest.fixture(scope="module")
def cycle(fakesnow_server: FakesnowServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cycle]:
    """Batch 1 built into the write schema and audited; its tables copied into production (fakesnow cannot swap);
    then the next cycle's reset."""
    database = new_database_name()
    with pytest.MonkeyPatch.context() as monkeypatch:
        point_snowflake_default(monkeypatch, fakesnow_server, database, warehouse="WAP_WH", role="R", protocol="http")
        for name, value in {
            "WAP_WAREHOUSE": "snowflake",
            "WAP_DATABASE": database.lower(),
            "WAP_DBT_PROJECT_DIR": str(SHOP),
            "WAP_DUCKDB_PATH": str(tmp_path_factory.mktemp("own-snowflake") / "parse.duckdb"),
        }.items():
            monkeypatch.setenv(name, value)
        config = load_config()
        prepare(config)
        warehouse = SnowflakeWarehouse(config)
        with warehouse.connect() as conn, closing(conn.cursor()) as cursor:
            load_batch_sql(cursor, database, 1)
        dbt_build(config, run_id=RUN_ID)
        report = run_audit(config, run_id=RUN_ID)
        views = query_of(warehouse, VIEWS)
        with warehouse.connect() as conn, closing(conn.cursor()) as cursor:
            cursor.execute(f"create schema {database}.dwh")
            cursor.execute(
                "select table_name from information_schema.tables where table_schema = 'DEVELOP_DWH' "
                "and table_type = 'BASE TABLE'"
            )
            for (name,) in cursor.fetchall():
                cursor.execute(f'create table {database}.dwh."{name}" as select * from {database}.develop_dwh."{name}"')

        sent: list[str] = []
        fetch_all = snowflake_warehouse.fetch_all

        def recording(cursor: Any, sql: str, params: list) -> list[tuple]:
            sent.append(sql)
            return fetch_all(cursor, sql.removesuffix(" copy grants"), params)

        with monkeypatch.context() as patch:
            patch.setattr(snowflake_warehouse, "fetch_all", recording)
            stateful = load_stateful_relations(prepared_project(config).manifest_path)
            reset = reset_write_schema(config, stateful)
        yield Cycle(config, warehouse, database, sent, reset, report, views)
    drop_database(database)


def query(cycle: Cycle, sql: str) -> list[tuple]:
    with cycle.warehouse.session(read_only=True) as run:
        return run(sql, [])


def test_the_reset_clones_the_incremental_model_and_the_snapshot_with_their_grants(cycle: Cycle) -> None:
    assert cycle.reset.carried == ("CUSTOMER_STATUS_HISTORY", "ORDERS_HISTORY")
    db = f'"{cycle.database}"'
    clones = [sql for sql in cycle.sent if " clone " in sql]
    assert clones == [
        f'create table {db}."DEVELOP_DWH"."{name}" clone {db}."DWH"."{name}" copy grants'
        for name in ("CUSTOMER_STATUS_HISTORY", "ORDERS_HISTORY")
    ]


def test_the_write_schema_then_holds_exactly_production_state(cycle: Cycle) -> None:
    assert set(cycle.reset.dropped) >= {"ORDERS_HISTORY", "STG_ORDERS", "CUSTOMER_ORDERS", "_WAP_MARKER"}
    tables = query(cycle, "select table_name from information_schema.tables where table_schema = 'DEVELOP_DWH'")
    assert sorted(tables) == [("CUSTOMER_STATUS_HISTORY",), ("ORDERS_HISTORY",)]
    assert query(cycle, "select * from develop_dwh.orders_history order by 1") == query(
        cycle, "select * from dwh.orders_history order by 1"
    )
    assert query(cycle, "select count(*) from develop_dwh.customer_status_history") == [(3,)]


def test_views_name_their_neighbours_relatively(cycle: Cycle) -> None:
    views = cycle.views  # as the build left them (the reset dropped them since)
    assert set(views) == {"STG_CUSTOMERS", "STG_ORDERS", "STG_LARGE_ORDERS"}
    for name, sql in views.items():
        body = sql.split(" AS ", 1)[1].upper()
        assert "DEVELOP_DWH" not in body and cycle.database not in body, f"{name}: {sql}"
    assert "FROM STG_ORDERS WHERE" in views["STG_LARGE_ORDERS"].upper()


def test_the_audit_reports_every_relation_and_never_the_stored_failures(cycle: Cycle) -> None:
    statuses = {entry["name"].lower(): entry["status"] for entry in cycle.report["relations"]}
    assert set(statuses) == set(RELATIONS)
    assert set(statuses.values()) == {"added"}
    assert query(cycle, "select count(*) from develop_dwh_dbt_test__audit.not_null_customer_orders_total_amount") == [
        (0,)
    ]
