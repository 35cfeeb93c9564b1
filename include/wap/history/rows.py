"""The audit history's rows, from and to plain data (no warehouse): a report's relations as table rows, and recent
rows as the compact series the review page and the CLI show."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

#: The figures of a relation that :func:`display_series` follows, and the column each comes from.
SERIES = (
    ("added", "rows_added"),
    ("removed", "rows_removed"),
    ("changed", "rows_changed"),
    ("after", "rows_after"),
    ("before", "rows_before"),  # None in a relation's first cycle (:func:`wap.ui.series.new_cycles`)
)


def cycle_rows(report: Mapping[str, Any], *, review_id: str, audited_at: datetime) -> list[dict[str, Any]]:
    """One history row per relation of an audit ``report`` (:mod:`wap.audit.report`), outcome ``open``.

    Row figures are the report's (None stays None); column changes are counted; dbt tests count toward the
    relation whose name is their model's (case-insensitive).
    """
    tests: dict[str, tuple[int, int]] = {}
    for test in report.get("dbt_tests") or []:
        model = str(test.get("model") or "").lower()
        warned, failed = tests.get(model, (0, 0))
        tests[model] = (warned + int(test.get("warned") or 0), failed + int(test.get("failed") or 0))
    rows = []
    for entry in report.get("relations") or []:
        name = str(entry["name"])
        figures = entry.get("rows") or {}
        columns = entry.get("columns") or {}
        warned, failed = tests.get(name.lower(), (0, 0))
        rows.append(
            {
                "dag_id": report["dag_id"],
                "run_id": report["run_id"],
                "review_id": review_id,
                "audited_at": audited_at,
                "relation": name,
                "status": entry.get("status"),
                **{f"rows_{key}": figures.get(key) for key in ("before", "after", "added", "removed", "changed")},
                "columns_added": len(columns.get("added") or []),
                "columns_removed": len(columns.get("removed") or []),
                "columns_retyped": len(columns.get("type_changed") or []),
                "tests_warned": warned,
                "tests_failed": failed,
                "outcome": "open",
                "decided_by": None,
                "decided_at": None,
                "rules": None,
            }
        )
    return rows


def display_series(
    history: Sequence[Mapping[str, Any]], relations: Iterable[str], *, cycles: int = 14
) -> dict[str, Any]:
    """The newest ``cycles`` runs of ``history`` (rows as :meth:`AuditHistory.recent` returns them, any outcome),
    oldest to newest: each run's headline, and per relation of ``relations`` its row figures per run (None where
    that run did not have it). Relation names are matched case-insensitively and keyed as given."""
    runs: dict[str, dict[str, Any]] = {}
    figures: dict[str, dict[str, Mapping[str, Any]]] = {}
    for row in history:
        run_id = row["run_id"]
        if run_id not in runs or _moment(row["audited_at"]) > _moment(runs[run_id]["audited_at"]):
            runs[run_id] = {key: row.get(key) for key in ("run_id", "review_id", "audited_at", "outcome", "decided_by")}
        figures.setdefault(run_id, {})[str(row["relation"]).lower()] = row
    ordered = sorted(runs.values(), key=lambda run: (_moment(run["audited_at"]), run["run_id"]))
    window = ordered[-cycles:] if cycles > 0 else []
    series = {}
    for name in relations:
        per_run = [figures[run["run_id"]].get(name.lower()) for run in window]
        series[name] = {
            label: [None if row is None else row.get(column) for row in per_run] for label, column in SERIES
        }
    return {"cycles": window, "relations": series}


def _moment(value: datetime | str | None) -> datetime:
    """A timestamp to order by (ISO text or a datetime; naive means UTC; None first)."""
    if value is None:
        return datetime.min.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
