"""
### wap_dwh_rollback: put the previous production back (manual trigger)

Swaps the write schema with production again, but only when the write schema still holds, unchanged, the
production that the last publish of `wap_dwh` replaced (the markers say so). Otherwise it fails with the
reason, changes nothing, and the failure is announced on Slack. Run it before the next `wap_dwh` run rebuilds
the write schema.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from wap import tasks
from wap.config import load_config
from wap.slack.callbacks import on_failure

config = load_config()

with DAG(
    dag_id="wap_dwh_rollback",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["wap", "rollback", config.warehouse],
    default_args={
        "owner": "data-platform",
        "retries": 1,
        "retry_delay": timedelta(minutes=1),
        "on_failure_callback": on_failure(),
    },
    doc_md=__doc__,
) as dag:
    PythonOperator(task_id="rollback", python_callable=tasks.rollback, pool=config.warehouse_task_pool)
