"""The Python callables of the DAG's own tasks; the DAG file only wires them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wap.config import load_config
from wap.dbt_results import XCOM_KEY, collect


def audit(test_task_ids: Sequence[str], ti: Any, run_id: str) -> dict[str, Any]:
    """Audit: the diff report of this run's build, with its review id, as the task's XCom."""
    from wap.audit import run_audit

    dbt_tests = collect((task_id, ti.xcom_pull(task_ids=task_id, key=XCOM_KEY)) for task_id in test_task_ids)
    return run_audit(load_config(), run_id=run_id, dbt_tests=dbt_tests)
