"""Small schema-v1 reports for the Slack tests (built with the real report builder)."""

from __future__ import annotations

from typing import Any

from wap.audit.report import build_report, review_id

RUN_ID = "manual__2024-05-01T10:00:00+00:00"


def entry(name: str, status: str, *, kind: str = "table", **rows: int | None) -> dict[str, Any]:
    base = {"before": None, "after": None, "added": None, "removed": None, "changed": None}
    return {
        "name": name,
        "kind": None if status == "removed" else kind,
        "kind_before": None if status == "added" else kind,
        "status": status,
        "key": ["id"] if status == "changed" else None,
        "diff_method": "key" if status == "changed" else None,
        "duplicate_keys": False,
        "columns": {"added": [{"name": "new_col", "type": "INTEGER"}], "removed": [], "type_changed": []},
        "rows": {**base, **rows},
        "column_changes": {},
        "samples": {"added": [], "removed": [], "changed": []},
        "periods": [],
    }


def report(relations: list[dict[str, Any]] | None = None, run_id: str = RUN_ID) -> dict[str, Any]:
    if relations is None:
        relations = [
            entry("sysselsetting_forholdstall", "changed", before=2400, after=2880, added=480, removed=0, changed=12),
            entry("fresh", "added", after=4, added=4),
            entry("gone", "removed", kind="view", before=7, removed=7),
            entry("same", "unchanged", before=2, after=2, added=0, removed=0, changed=0),
        ]
    return build_report(
        dag_id="wap_dwh",
        run_id=run_id,
        warehouse="duckdb",
        write_schema="develop_dwh",
        prod_schema="dwh",
        relations=relations,
        dbt_tests=[{"model": "sysselsetting_forholdstall", "passed": 5, "failed": 0, "warned": 1}],
    )


def audit_xcom(run_id: str = RUN_ID) -> dict[str, Any]:
    """What the audit task returns: the report plus its review id."""
    body = report(run_id=run_id)
    return {**body, "review_id": review_id(run_id, body)}
