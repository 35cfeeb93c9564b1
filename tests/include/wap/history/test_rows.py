"""The history's rows from an audit report, and the compact series the review page shows."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from wap.history.rows import cycle_rows, display_series

AUDITED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def report() -> dict[str, Any]:
    return {
        "dag_id": "wap_dwh",
        "run_id": "manual__2026-01-02",
        "relations": [
            {
                "name": "ORDERS",
                "status": "changed",
                "rows": {"before": 10, "after": 12, "added": 3, "removed": 1, "changed": 2},
                "columns": {
                    "added": [{"name": "a", "type": "INTEGER"}, {"name": "b", "type": "VARCHAR"}],
                    "removed": [],
                    "type_changed": [{"name": "c", "before": "INTEGER", "after": "BIGINT"}],
                },
            },
            {"name": "customers", "status": "added", "rows": {"before": None, "after": 5, "added": 5}},
            {"name": "legacy", "status": "removed", "rows": {"before": 7, "after": None}},
        ],
        "dbt_tests": [
            {"model": "orders", "passed": 4, "failed": 1, "warned": 2},
            {"model": "Orders", "passed": 0, "failed": 2, "warned": 0},
            {"model": "other", "passed": 1, "failed": 9, "warned": 9},
        ],
    }


def test_cycle_rows_one_row_per_relation() -> None:
    rows = cycle_rows(report(), review_id="0123456789ab", audited_at=AUDITED_AT)
    assert [row["relation"] for row in rows] == ["ORDERS", "customers", "legacy"]
    orders, customers, legacy = rows
    assert orders == {
        "dag_id": "wap_dwh",
        "run_id": "manual__2026-01-02",
        "review_id": "0123456789ab",
        "audited_at": AUDITED_AT,
        "relation": "ORDERS",
        "status": "changed",
        "rows_before": 10,
        "rows_after": 12,
        "rows_added": 3,
        "rows_removed": 1,
        "rows_changed": 2,
        "columns_added": 2,
        "columns_removed": 0,
        "columns_retyped": 1,
        "tests_warned": 2,
        "tests_failed": 3,
        "outcome": "open",
        "decided_by": None,
        "decided_at": None,
        "rules": None,
    }
    assert customers["status"] == "added" and customers["rows_before"] is None and customers["rows_after"] == 5
    assert customers["rows_removed"] is None and customers["rows_changed"] is None
    assert (customers["columns_added"], customers["columns_removed"], customers["columns_retyped"]) == (0, 0, 0)
    assert (customers["tests_warned"], customers["tests_failed"]) == (0, 0)
    assert legacy["rows_before"] == 7 and legacy["rows_after"] is None


def test_cycle_rows_of_an_empty_report() -> None:
    assert (
        cycle_rows(
            {"dag_id": "d", "run_id": "r", "relations": [], "dbt_tests": []}, review_id="x", audited_at=AUDITED_AT
        )
        == []
    )


def history_row(run_id: str, day: int, relation: str, added: int, *, outcome: str = "published") -> dict[str, Any]:
    return {
        "run_id": run_id,
        "review_id": f"review-{run_id}",
        "audited_at": datetime(2026, 1, day, tzinfo=timezone.utc).isoformat(),
        "outcome": outcome,
        "decided_by": "alice" if outcome == "published" else None,
        "relation": relation,
        "rows_added": added,
        "rows_removed": 0,
        "rows_changed": day,
        "rows_after": 100 + day,
        "rows_before": 100,
    }


def test_display_series_oldest_to_newest_with_gaps() -> None:
    history = [  # newest first, as recent() returns them
        history_row("r3", 3, "orders", 30, outcome="open"),
        history_row("r2", 2, "ORDERS", 20),
        history_row("r2", 2, "customers", 21),
        history_row("r1", 1, "orders", 10, outcome="rolled back"),
    ]
    series = display_series(history, ["Orders", "customers", "missing"])
    assert series["cycles"] == [
        {
            "run_id": "r1",
            "review_id": "review-r1",
            "audited_at": "2026-01-01T00:00:00+00:00",
            "outcome": "rolled back",
            "decided_by": None,
        },
        {
            "run_id": "r2",
            "review_id": "review-r2",
            "audited_at": "2026-01-02T00:00:00+00:00",
            "outcome": "published",
            "decided_by": "alice",
        },
        {
            "run_id": "r3",
            "review_id": "review-r3",
            "audited_at": "2026-01-03T00:00:00+00:00",
            "outcome": "open",
            "decided_by": None,
        },
    ]
    assert series["relations"] == {
        "Orders": {
            "added": [10, 20, 30],
            "removed": [0, 0, 0],
            "changed": [1, 2, 3],
            "after": [101, 102, 103],
            "before": [100, 100, 100],
        },
        "customers": {
            "added": [None, 21, None],
            "removed": [None, 0, None],
            "changed": [None, 2, None],
            "after": [None, 102, None],
            "before": [None, 100, None],
        },
        "missing": {
            "added": [None] * 3,
            "removed": [None] * 3,
            "changed": [None] * 3,
            "after": [None] * 3,
            "before": [None] * 3,
        },
    }


def test_display_series_keeps_the_newest_cycles() -> None:
    history = [history_row(f"r{day:02d}", day, "orders", day) for day in range(1, 21)]
    series = display_series(list(reversed(history)), ["orders"], cycles=5)
    assert [cycle["run_id"] for cycle in series["cycles"]] == ["r16", "r17", "r18", "r19", "r20"]
    assert series["relations"]["orders"]["added"] == [16, 17, 18, 19, 20]
    assert len(display_series(history, ["orders"])["cycles"]) == 14  # the default window


def test_display_series_of_no_history() -> None:
    assert display_series([], ["orders"]) == {
        "cycles": [],
        "relations": {"orders": {"added": [], "removed": [], "changed": [], "after": [], "before": []}},
    }
