"""What travels with a Snowflake schema swap: grants (block or copy) and schema properties (warn)."""

from __future__ import annotations

import pytest

from wap.schema_checks import copy_grant_statements, grant_findings, grants_from_show, property_findings

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


def test_copy_grant_statements_are_exact_and_refuse_odd_text() -> None:
    missing = {("USAGE", "ROLE", "BI"), ("CREATE TABLE", "DATABASE_ROLE", 'we"ird')}
    assert copy_grant_statements('"DB"."DEVELOP_DWH"', missing) == [
        'GRANT CREATE TABLE ON SCHEMA "DB"."DEVELOP_DWH" TO DATABASE ROLE "we""ird"',
        'GRANT USAGE ON SCHEMA "DB"."DEVELOP_DWH" TO ROLE "BI"',
    ]
    with pytest.raises(ValueError, match="refusing to build SQL"):
        copy_grant_statements('"DB"."S"', {("USAGE; DROP", "ROLE", "X")})


def test_property_findings_warn_on_each_difference() -> None:
    write = {"is_transient": "NO", "is_managed_access": "NO", "retention_time": 1}
    prod = {"is_transient": "NO", "is_managed_access": "YES", "retention_time": 7}
    findings = property_findings("develop_dwh", "dwh", write, prod)
    assert [(f["relation"], f["severity"]) for f in findings] == [
        ("is_managed_access", "warn"),
        ("retention_time", "warn"),
    ]
    assert property_findings("develop_dwh", "dwh", write, write) == []
