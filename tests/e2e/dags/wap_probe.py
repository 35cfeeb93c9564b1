"""
### wap_probe: one quick task, for the end-to-end tests

Run next to `wap_dwh` while its `await_approval` is deferred: with one worker slot in the whole cluster
(`[core] parallelism = 1`), this task can only run if the deferred sensor holds no slot.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task


@dag(
    dag_id="wap_probe",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["wap", "e2e"],
    default_args={"owner": "data-platform", "retries": 1, "retry_delay": timedelta(seconds=5)},
    doc_md=__doc__,
)
def wap_probe():
    @task
    def probe() -> str:
        return "ran"

    probe()


wap_probe()
