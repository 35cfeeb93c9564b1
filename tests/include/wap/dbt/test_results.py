from __future__ import annotations

import json
from pathlib import Path

from wap.dbt.results import XCOM_KEY, collect, model_of_task, push_test_results, summarize_run_results


def _results(*statuses: tuple[str, str]) -> dict:
    return {"results": [{"unique_id": uid, "status": status} for uid, status in statuses]}


def test_counts_tests_only() -> None:
    run_results = _results(
        ("test.p.a", "pass"),
        ("test.p.b", "fail"),
        ("test.p.c", "warn"),
        ("test.p.d", "error"),
        ("model.p.m", "success"),
        ("test.p.e", "skipped"),
    )
    assert summarize_run_results(run_results) == {"passed": 1, "failed": 2, "warned": 1}


class _TI:
    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


def test_callback_pushes_counts_of_a_test_task(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "run_results.json").write_text(json.dumps(_results(("test.p.a", "pass"))))
    ti = _TI()
    push_test_results(str(tmp_path), context={"ti": ti})
    assert ti.pushed == {XCOM_KEY: {"passed": 1, "failed": 0, "warned": 0}}


def test_callback_is_quiet_without_results_or_on_bad_json(tmp_path: Path) -> None:
    ti = _TI()
    push_test_results(str(tmp_path), context={"ti": ti})
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "run_results.json").write_text("{not json")
    push_test_results(str(tmp_path), context={"ti": ti})
    (tmp_path / "target" / "run_results.json").write_text(json.dumps(_results(("model.p.m", "success"))))
    push_test_results(str(tmp_path), context={"ti": ti})
    assert ti.pushed == {}


def test_collect_names_models_and_sorts() -> None:
    assert model_of_task("write.sysselsetting_forholdstall.test") == "sysselsetting_forholdstall"
    assert model_of_task("write.relationships_orders_customer_id__ref_customers__test") == (
        "relationships_orders_customer_id__ref_customers_"
    )  # a test of several models, detached into a task of its own
    rows = collect(
        [
            ("write.b.test", {"passed": 2, "failed": 0, "warned": 1}),
            ("write.a.test", {"passed": 1, "failed": 0, "warned": 0}),
            ("write.c.test", None),
        ]
    )
    assert rows == [
        {"model": "a", "passed": 1, "failed": 0, "warned": 0},
        {"model": "b", "passed": 2, "failed": 0, "warned": 1},
    ]
