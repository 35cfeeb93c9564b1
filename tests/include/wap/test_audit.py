"""The audit's swap-safety findings (publish enforces the blocks: tests/include/wap/test_publish.py)."""

from __future__ import annotations

import duckdb

from wap.audit import swap_safety
from wap.diff.dialect import DIALECTS
from wap.diff.markdown import render_markdown
from wap.diff.report import build_report


def test_a_view_naming_the_write_schema_is_a_blocking_finding() -> None:
    conn = duckdb.connect()
    conn.execute("create schema develop_dwh; create schema ssb; create table ssb.s as select 1 as x")
    conn.execute("create table develop_dwh.t as select 1 as x")
    conn.execute("create view develop_dwh.reads_landing as select x from ssb.s")
    conn.execute('create view develop_dwh."Stale" as select x from "develop_dwh".t')
    conn.execute("create view develop_dwh.also_stale as select x from DEVELOP_DWH.t")
    conn.execute("create view develop_dwh.not_a_match as select x as develop_dwh_x from ssb.s")

    def query(sql: str, params) -> list[tuple]:
        return conn.execute(sql, list(params)).fetchall()

    findings = swap_safety(query, DIALECTS["duckdb"], "develop_dwh")
    assert [(f["relation"], f["severity"], f["check"]) for f in findings] == [
        ("Stale", "block", "view_names_write_schema"),
        ("also_stale", "block", "view_names_write_schema"),
    ]
    report = build_report(
        dag_id="d",
        run_id="r",
        warehouse="duckdb",
        write_schema="develop_dwh",
        prod_schema="dwh",
        relations=[],
        swap_safety=findings,
    )
    assert "- **block**: view Stale names develop_dwh" in render_markdown(report)
