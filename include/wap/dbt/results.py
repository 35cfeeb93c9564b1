"""dbt test results of the build, carried from each Cosmos task to the audit through XCom."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

XCOM_KEY = "wap_dbt_tests"
_OUTCOMES = {"pass": "passed", "fail": "failed", "error": "failed", "warn": "warned"}


def summarize_run_results(run_results: dict[str, Any]) -> dict[str, int]:
    """Counts of passed, failed and warned tests in one dbt `run_results.json`."""
    counts = {"passed": 0, "failed": 0, "warned": 0}
    for result in run_results.get("results", []):
        outcome = _OUTCOMES.get(str(result.get("status")))
        if str(result.get("unique_id", "")).startswith("test.") and outcome:
            counts[outcome] += 1
    return counts


def push_test_results(project_dir: str, **kwargs: Any) -> None:
    """Cosmos callback: after a dbt test task, push its test counts to XCom. Never fails the task."""
    context = kwargs.get("context") or {}
    path = Path(project_dir) / "target" / "run_results.json"
    if "ti" not in context or not path.is_file():
        return
    try:
        counts = summarize_run_results(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        log.warning("Could not read dbt run results at %s: %s", path, error)
        return
    if any(counts.values()):
        context["ti"].xcom_push(key=XCOM_KEY, value=counts)


def model_of_task(task_id: str) -> str:
    """``write.<model>.test`` -> ``<model>``; a test of several models, ``write.<test>_test`` -> ``<test>``."""
    parts = task_id.split(".")
    if parts[-1] == "test" and len(parts) >= 2:
        return parts[-2]
    return parts[-1].removesuffix("_test")


def collect(task_results: Iterable[tuple[str, dict[str, int] | None]]) -> list[dict[str, Any]]:
    """Report rows ``{model, passed, failed, warned}`` from (test task id, pushed counts), sorted by model."""
    rows = [{"model": model_of_task(task_id), **counts} for task_id, counts in task_results if counts is not None]
    return sorted(rows, key=lambda row: row["model"])
