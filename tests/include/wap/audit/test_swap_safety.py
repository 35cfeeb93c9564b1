"""Swap safety: views naming the write schema (block); what travels with a Snowflake schema swap: grants (block
or copy) and schema properties (warn). Publish enforces the blocks: tests/include/wap/publish/."""

from __future__ import annotations

import duckdb
import pytest

from wap.audit.dialect import DIALECTS
from wap.audit.markdown import render_markdown
from wap.audit.report import build_report
from wap.audit.swap_safety import grant_findings, grants_from_show, property_findings, view_findings

SHOW_COLUMNS = ["created_on", "privilege", "granted_on", "name", "granted_to", "grantee_name", "grant_option"]


def show(*grants: tuple[str, str, str]) -> list[tuple]:
    return [("2026-01-01", p, "SCHEMA", "DB.S", to, who, "false") for p, to, who in grants]


def test_grants_from_show_ignores_ownership() -> None:
    rows = show(("USAGE", "ROLE", "ANALYST"), ("OWNERSHIP", "ROLE", "LOADER"), ("select", "role", "bi"))
    assert grants_from_show(SHOW_COLUMNS, rows) == {("USAGE", "ROLE", "ANALYST"), ("SELECT", "ROLE", "bi")}


@pytest.mark.parametrize(("policy", "severity"), [("block", "block"), ("copy", "warn")])
def test_a_grant_production_has_and_the_build_lacks(policy: str, severity: str) -> None:
    prod = {("USAGE", "ROLE", "ANALYST"), ("USAGE", "ROLE", "BI")}
    write = {("USAGE", "ROLE", "ANALYST"), ("CREATE TABLE", "ROLE", "DEV")}
    findings = grant_findings("develop_dwh", "dwh", write, prod, policy)
    assert [(f["check"], f["severity"], f["relation"]) for f in findings] == [
        ("grant_missing_in_write_schema", severity, "ROLE BI"),
        ("grant_only_in_write_schema", "warn", "ROLE DEV"),
    ]
    assert "dwh grants USAGE to ROLE BI, develop_dwh does not" in findings[0]["message"]
    assert grant_findings("develop_dwh", "dwh", prod, prod, policy) == []


def test_property_findings_warn_on_each_difference() -> None:
    write = {"is_transient": "NO", "is_managed_access": "NO", "retention_time": 1}
    prod = {"is_transient": "NO", "is_managed_access": "YES", "retention_time": 7}
    findings = property_findings("develop_dwh", "dwh", write, prod)
    assert [(f["relation"], f["severity"]) for f in findings] == [
        ("is_managed_access", "warn"),
        ("retention_time", "warn"),
    ]
    assert property_findings("develop_dwh", "dwh", write, write) == []


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

    findings = view_findings(query, DIALECTS["duckdb"], "develop_dwh")
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
