from __future__ import annotations

import copy
import hashlib
import re

from wap.audit.markdown import headline, render_markdown
from wap.audit.report import SCHEMA_VERSION, build_report, canonical_json, review_id


def _entry(name: str, status: str, **rows: int | None) -> dict:
    base = {"before": None, "after": None, "added": None, "removed": None, "changed": None}
    return {
        "name": name,
        "kind": "table",
        "kind_before": "table",
        "status": status,
        "key": ["id"] if status == "changed" else None,
        "diff_method": "key" if status == "changed" else None,
        "duplicate_keys": False,
        "columns": {"added": [{"name": "new_col", "type": "INTEGER"}], "removed": [], "type_changed": []},
        "rows": {**base, **rows},
        "column_changes": {"amount": 3, "note": 0},
        "samples": {
            "added": [{"id": 9, "note": "blåbær | pipe"}],
            "removed": [],
            "changed": [{"before": {"id": 1, "amount": 1}, "after": {"id": 1, "amount": 2}}],
        },
        "periods": [
            {
                "column": "d",
                "grain": "year",
                "before": {"min": "2015-01-01", "max": "2021-01-01"},
                "after": {"min": "2015-01-01", "max": "2022-01-01"},
                "counts": [{"period": "2021", "before": 5, "after": 5}, {"period": "2022", "before": 0, "after": 7}],
            }
        ],
    }


def _report(run_id: str = "manual__1") -> dict:
    relations = [
        _entry("orders", "changed", before=10, after=12, added=3, removed=1, changed=3),
        _entry("fresh", "added", after=4, added=4),
        _entry("same", "unchanged", before=2, after=2, added=0, removed=0, changed=0),
    ]
    return build_report(
        dag_id="wap_dwh",
        run_id=run_id,
        warehouse="duckdb",
        write_schema="develop_dwh",
        prod_schema="dwh",
        relations=relations,
        dbt_tests=[{"model": "orders", "passed": 3, "failed": 0, "warned": 1}],
    )


def test_summary_counts_relations_and_rows() -> None:
    report = _report()
    assert report["schema_version"] == SCHEMA_VERSION == 1
    assert report["summary"] == {
        "relations": 3,
        "added": 1,
        "removed": 0,
        "changed": 1,
        "unchanged": 1,
        "rows_before": 12,
        "rows_after": 18,
        "rows_added": 7,
        "rows_removed": 1,
        "rows_changed": 3,
    }


def test_review_id_is_sha256_of_run_id_and_canonical_json() -> None:
    report = _report()
    expected = hashlib.sha256(f"manual__1\n{canonical_json(report)}".encode()).hexdigest()[:12]
    assert review_id("manual__1", report) == expected
    assert re.fullmatch(r"[0-9a-f]{12}", expected)


def test_review_id_binds_the_exact_report_and_run() -> None:
    report = _report()
    rid = review_id("manual__1", report)
    assert review_id("manual__1", copy.deepcopy(report)) == rid
    reordered = dict(reversed(list(report.items())))
    assert review_id("manual__1", reordered) == rid  # key order does not matter, content does
    changed = copy.deepcopy(report)
    changed["relations"][0]["rows"]["added"] = 4
    assert review_id("manual__1", changed) != rid
    assert review_id("manual__2", report) != rid


def test_markdown_has_headline_tables_samples_and_periods() -> None:
    report = _report()
    text = render_markdown(report, "abcdef012345")
    assert "Review `abcdef012345` of run `manual__1`." in text
    assert headline(report) in text
    assert "| orders | table | changed | 10 | 12 | 3 | 1 | 3 |" in text
    assert "| orders | 3 | 0 | 1 |" in text  # dbt tests
    assert "| + new_col | INTEGER |" in text
    assert "| amount | 3 |" in text and "| note | 0 |" not in text  # only columns that changed
    assert "blåbær \\| pipe" in text  # pipes escaped in cells
    assert "| before | 1 | 1 |" in text and "| after | 1 | 2 |" in text
    assert "| 2022 | 0 | 7 | +7 |" in text
    assert "### same" not in text  # unchanged relations only in the overview
