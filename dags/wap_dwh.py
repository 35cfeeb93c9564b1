"""
### wap_dwh: Write-Audit-Publish of the dbt project

**Preflight**: the settings load and the warehouse answers through its connection; otherwise the run fails
here, with the reason, before anything is written.

**Write**: the write schema is emptied of everything earlier cycles left there (after a publish, the previous
production), and production's incremental models and snapshots are carried over (Snowflake: zero-copy clones;
DuckDB: copies), so that dbt extends production's state; a run triggered with conf `{"full_refresh": true}`
rebuilds the incremental models from scratch. Then dbt builds every seed, model and snapshot into the write schema
(`develop_dwh` by default) with its tests. By default (`WAP_WRITE_MODE=one_build`) `write.build` does both, as one
`dbt build`, and every other task of the group shows one node and its tests as that build runs them (they start and
end in the triggerer); clearing `write.build` builds again from the reset. With `WAP_WRITE_MODE=per_model`,
`reset_write` resets and Cosmos runs a dbt command per model and per model's tests, each retried on its own. A
failing model or test ends the run: nothing is audited or published.

**Audit**: diffs the write schema against production inside the warehouse; the report (JSON, with its
`review_id`) is the task's XCom and its Markdown rendering is in the task log. A marker in the write schema
records the run, the review id and each relation's count and content hash.

**Approve**: the audit opens the review by setting the Variable `wap_approval__<dag_id>` to
`pending <review_id>`. `await_approval` (deferrable: no worker slot while it waits) succeeds on
`approve <review_id>`; `reject <review_id>` or the timeout skips it, and nothing is published. Any other
value is logged and ignored.

**Review policy** (optional, `wap_policy.yml` in the dbt project, validated when this file is imported): when every
rule holds for the report (for example no relation or column removed, no failed or warned test, rows removed and
changed within limits, rows added within the range of the recent published cycles), the audit approves the review
itself, as a person would, recorded as decided by `policy`; otherwise the review waits for a person and names the
rules that failed. Each audit's figures per relation are kept in the audit history table, outside both schemas.

**Publish**: right before the swap, guards check that the write schema still holds the audited build of this
run and the approved review, and that production does not already hold this run (a retry is a no-op);
then the schemas are swapped (embedded warehouse: an atomic emulation in one transaction). Each relation the
publish changed or added is announced as an Airflow Asset (through the alias `wap_dwh__published`), once per
publish: DAGs scheduled on those Assets run after it (see `example_wap_consumer`).

Settings come from the environment (`WAP_*`, see the README); parsing this file needs no connection,
no Variable and no warehouse.
"""

from __future__ import annotations

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG
from cosmos import DbtTaskGroup

from wap import tasks
from wap.approval.sensor import AwaitApprovalSensor
from wap.config import load_config
from wap.dag_defaults import START_DATE, default_args
from wap.dbt import cosmos as dbt_config
from wap.policy import load_policy
from wap.publish.assets import published_alias
from wap.publish.operator import SnowflakePublishOperator
from wap.slack.callbacks import on_published, on_rejected, on_review_opened
from wap.write.group import one_build_group, producer_task_id

config = load_config()
# A bad policy file is an import error naming the file and the place; the audit reads it again when it runs.
policy = load_policy(config.policy_path) if config.policy_path is not None else None

with DAG(
    dag_id="wap_dwh",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["wap", "dbt", config.warehouse] + (["review-policy"] if policy is not None else []),
    default_args=default_args(),
    doc_md=__doc__,
) as dag:
    preflight = PythonOperator(task_id="preflight", python_callable=tasks.preflight, pool=config.warehouse_task_pool)

    if config.write_mode == "one_build":
        write = one_build_group(config, retries=default_args()["retries"])
        audit_args = {"test_rows_task_id": producer_task_id()}
        preflight >> write
        write_done = write.get_child_by_label("build")  # the units only show the build: the audit follows it
    else:
        reset_write = PythonOperator(
            task_id="reset_write", python_callable=tasks.reset_write, pool=config.warehouse_task_pool
        )
        write = DbtTaskGroup(
            group_id="write",
            project_config=dbt_config.project_config(config),
            profile_config=dbt_config.profile_config(config),
            execution_config=dbt_config.execution_config(config),
            render_config=dbt_config.render_config(config),
            operator_args=dbt_config.operator_args(config),
        )
        audit_args = {"test_task_ids": dbt_config.test_task_ids(write)}
        preflight >> reset_write >> write
        write_done = write

    audit = PythonOperator(
        task_id="audit",
        python_callable=tasks.audit,
        op_kwargs=audit_args,
        pool=config.warehouse_task_pool,
        on_success_callback=on_review_opened(),
    )

    await_approval = AwaitApprovalSensor(
        task_id="await_approval",
        approval_variable=config.approval_variable,
        review_timeout=config.review_timeout,
        poke_interval=config.approval_poke_interval.total_seconds(),
        on_skipped_callback=[on_rejected(), tasks.review_closed],
    )

    # The relations a publish announces are known when it runs: its events go through the alias (an outlet);
    # as an inlet, the alias shows a retry whether the try that swapped announced already.
    announced = published_alias(config.dag_id)
    if config.warehouse == "snowflake":
        publish = SnowflakePublishOperator(
            task_id="publish",
            pool=config.warehouse_task_pool,
            on_success_callback=on_published(),
            outlets=[announced],
            inlets=[announced],
        )
    else:
        publish = PythonOperator(
            task_id="publish",
            python_callable=tasks.publish,
            pool=config.warehouse_task_pool,
            on_success_callback=on_published(),
            outlets=[announced],
            inlets=[announced],
        )

    write_done >> audit >> await_approval >> publish
