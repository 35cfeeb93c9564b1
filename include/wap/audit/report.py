"""The audit report: one canonical, versioned JSON document, and the review id bound to it.

The report is a plain dict (JSON types only). Schema, version 1::

    schema_version  1
    dag_id, run_id  the run that built the write schema
    warehouse       "duckdb" | "snowflake"
    write_schema, prod_schema
    summary         relations, added, removed, changed, unchanged (relation counts);
                    rows_before, rows_after, rows_added, rows_removed, rows_changed (sums over relations)
    relations       one entry per relation in either schema (see wap.audit.engine.DiffEngine.diff_relation)
    dbt_tests       [{model, passed, failed, warned}] from the build, may be empty
    swap_safety     [{check, severity ("block" | "warn"), relation, message}]: what the swap would break;
                    publish refuses while a "block" finding holds

Python's json with sorted keys and no spaces is the canonical form; the review id is the first 12 hex chars
of SHA-256 over the run id, a newline, and that form.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

SCHEMA_VERSION = 1
STATUSES = ("added", "removed", "changed", "unchanged")


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def headline(report: Mapping[str, Any]) -> str:
    """The report in one line: relation counts and row totals of its summary (plain text; the Markdown report, the
    Slack messages and the review view all show this line)."""
    s = report["summary"]
    return (
        f"{s['relations']} relations: {s['changed']} changed, {s['added']} added, {s['removed']} removed, "
        f"{s['unchanged']} unchanged; rows {_n(s['rows_before'])} → {_n(s['rows_after'])} "
        f"(+{_n(s['rows_added'])} added, -{_n(s['rows_removed'])} removed, {_n(s['rows_changed'])} changed)"
    )


def summarize(relations: Sequence[dict[str, Any]]) -> dict[str, int]:
    summary = {"relations": len(relations), **{status: 0 for status in STATUSES}}
    for key in ("before", "after", "added", "removed", "changed"):
        summary[f"rows_{key}"] = 0
    for entry in relations:
        summary[entry["status"]] += 1
        for key in ("before", "after", "added", "removed", "changed"):
            summary[f"rows_{key}"] += entry["rows"].get(key) or 0
    return summary


def build_report(
    *,
    dag_id: str,
    run_id: str,
    warehouse: str,
    write_schema: str,
    prod_schema: str,
    relations: Sequence[dict[str, Any]],
    dbt_tests: Sequence[dict[str, Any]] = (),
    swap_safety: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "dag_id": dag_id,
        "run_id": run_id,
        "warehouse": warehouse,
        "write_schema": write_schema,
        "prod_schema": prod_schema,
        "summary": summarize(relations),
        "relations": list(relations),
        "dbt_tests": list(dbt_tests),
        "swap_safety": list(swap_safety),
    }


def canonical_json(report: dict[str, Any]) -> str:
    return json.dumps(report, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def review_id(run_id: str, report: dict[str, Any]) -> str:
    """12 hex chars of SHA-256 over the run id and the canonical report: approving it approves exactly this."""
    digest = hashlib.sha256(f"{run_id}\n{canonical_json(report)}".encode()).hexdigest()
    return digest[:12]
