"""
### example_wap_consumer: a DAG that runs when WAP publishes the relation it reads (the pattern to copy)

Scheduled on the Airflow Asset of one published relation, production's `sysselsetting_forholdstall`: each
publish of `wap_dwh` that changes or adds it (and each rollback that puts an earlier build of it back) emits an
event of that Asset, and this DAG runs once after it. A reject, a timeout, a failed build or a publish retried
after its swap emits nothing, so it never reads production before or during a publish.

Its task reads the table and logs its row count with the run and review id the event carries (`extra`).
To follow your own model, copy this file and change `RELATION`; `relation_asset` names the Asset the way the
publish does (DuckDB: `duckdb:/<file>/<schema>/<table>`; Snowflake: `snowflake://<account>/<DB>/<SCHEMA>/<TABLE>`,
which needs `WAP_SNOWFLAKE_ACCOUNT` to be named at parse time). Delete this file if you need no example.
"""

from __future__ import annotations

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from wap import tasks
from wap.config import load_config
from wap.dag_defaults import START_DATE, default_args
from wap.publish.assets import relation_asset

RELATION = "sysselsetting_forholdstall"

config = load_config()
published = relation_asset(config, RELATION)

with DAG(
    dag_id="example_wap_consumer",
    schedule=[published],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["wap", "example", config.warehouse],
    default_args=default_args(),
    doc_md=__doc__,
) as dag:
    PythonOperator(
        task_id="count_rows",
        python_callable=tasks.count_published_rows,
        op_kwargs={"relation": RELATION},
        inlets=[published],
        pool=config.warehouse_task_pool,
    )
