"""
### wap_dwh_rollback: put the previous production back (manual trigger)

Swaps the write schema with production again, but only when the write schema still holds, unchanged, the
production that the last publish of `wap_dwh` replaced (the markers say so). Otherwise it fails with the
reason, changes nothing, and the failure is announced on Slack. Run it before the next `wap_dwh` run rebuilds
the write schema. The relations it puts back (those that differ from the withdrawn build) are announced as
Airflow Assets, as a publish announces them, so the DAGs scheduled on them run again.
"""

from __future__ import annotations

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from wap import tasks
from wap.config import load_config
from wap.dag_defaults import START_DATE, default_args
from wap.publish.assets import published_alias

config = load_config()

with DAG(
    dag_id="wap_dwh_rollback",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["wap", "rollback", config.warehouse],
    default_args=default_args(),
    doc_md=__doc__,
) as dag:
    PythonOperator(
        task_id="rollback",
        python_callable=tasks.rollback,
        pool=config.warehouse_task_pool,
        outlets=[published_alias(config.dag_id)],
    )
