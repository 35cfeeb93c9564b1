"""The Python callables of the DAG's own tasks; the DAG file only wires them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from wap import failpoints
from wap.config import load_config
from wap.dbt.results import XCOM_KEY, collect

log = logging.getLogger(__name__)


def preflight() -> dict[str, str]:
    """Before anything is written: the settings load and the warehouse answers through its connection.

    A bad setting, a missing connection or an unreachable warehouse fails the run here, with the reason, and
    without a retry (waiting does not fix a setting); the write stage never starts.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from wap.config import WapError
    from wap.warehouse import open_warehouse

    try:
        config = load_config()
    except WapError as error:
        raise AirflowFailException(f"WAP preflight: {error}") from None
    where = f"the {config.warehouse} warehouse through connection {config.warehouse_conn_id!r}"
    if config.warehouse == "duckdb":
        where += f" (file {config.duckdb_path})"
        if not config.duckdb_path.exists():
            raise AirflowFailException(f"WAP preflight: {where}: the file does not exist (`wap demo reset` makes it)")
    try:
        with open_warehouse(config).session(read_only=True) as query:
            query("select 1", [])
    except Exception as error:  # any driver's or hook's error: the message is what the operator needs
        raise AirflowFailException(f"WAP preflight: cannot reach {where}: {error}") from None
    if config.warehouse == "snowflake":
        from wap.publish.assets import check_account

        try:
            check_account(config)
        except WapError as error:
            raise AirflowFailException(f"WAP preflight: {error}") from None
    log.info("Preflight: %s answers; building into %s", where, config.write_schema)
    return {"warehouse": config.warehouse, "write_schema": config.write_schema, "prod_schema": config.prod_schema}


def reset_write(dag_run: Any) -> dict[str, Any]:
    """Before the build: the write schema holds nothing of earlier cycles, and production's incremental models and
    snapshots (:mod:`wap.write`). A run triggered with conf ``{"full_refresh": true}`` carries no incremental model
    (they are built with ``--full-refresh``); snapshots keep their history, as with plain dbt."""
    from airflow.sdk.exceptions import AirflowFailException

    from wap.config import WapError
    from wap.write.reset import reset_for_run

    try:
        return reset_for_run(load_config(), dag_run.conf)
    except WapError as error:
        raise AirflowFailException(f"WAP: {error}") from None


def audit(
    ti: Any, run_id: str, test_task_ids: Sequence[str] = (), test_rows_task_id: str | None = None
) -> dict[str, Any]:
    """Audit: the diff report of this run's build, with its review id, as the task's XCom; opens the review.

    The dbt test counts come from the one-build task (``test_rows_task_id``, its rows per model) or, in per-model
    mode, from each test task (``test_task_ids``).
    """
    from wap.audit.stage import run_audit
    from wap.write.watcher import TEST_ROWS_XCOM_KEY

    config = load_config()
    if test_rows_task_id is not None:
        dbt_tests = list(ti.xcom_pull(task_ids=test_rows_task_id, key=TEST_ROWS_XCOM_KEY) or [])
    else:
        dbt_tests = collect((task_id, ti.xcom_pull(task_ids=task_id, key=XCOM_KEY)) for task_id in test_task_ids)
    report = run_audit(config, run_id=run_id, dbt_tests=dbt_tests)
    open_review(config.approval_variable, report["review_id"], run_id)
    return report


def open_review(variable: str, review_id: str, run_id: str) -> None:
    """Set the approval Variable to ``pending <review_id>``: any earlier decision no longer applies."""
    from airflow.sdk import Variable

    from wap.approval.protocol import value_for

    value = value_for("pending", review_id)
    Variable.set(variable, value, description=f"WAP review of run {run_id}: set to 'approve|reject {review_id}'")
    log.info("Review %s is open: set Variable %s to 'approve %s' to publish", review_id, variable, review_id)


def publish(ti: Any, run_id: str, dag_run: Any, outlet_events: Any, inlet_events: Any) -> dict[str, Any]:
    """Publish on the embedded warehouse: swap the write schema with production, for the review
    ``await_approval`` approved. (Snowflake's publish task is :class:`~wap.publish.operator.SnowflakePublishOperator`.)

    The guards run in the warehouse right before the swap (:mod:`wap.publish.guards`); a retry after a successful
    swap is reported as a no-op. Then the relations it put into production are announced as Assets
    (:mod:`wap.publish.assets`): once per publish, whichever try announces it.
    """
    from wap.approval.protocol import AUDIT_TASK_ID, DECISION_XCOM_KEY, approved_review_id
    from wap.publish.assets import announce_publish
    from wap.publish.duckdb import DuckDBPublisher
    from wap.warehouse.duckdb import DuckDBWarehouse

    decision = ti.xcom_pull(task_ids="await_approval", key=DECISION_XCOM_KEY) or {}
    review_id = approved_review_id(decision)
    if review_id is None:
        raise RuntimeError(f"no approval to publish (await_approval's decision: {decision!r}): refusing")
    config = load_config()
    publisher = DuckDBPublisher(DuckDBWarehouse(config))
    result = _refusal_fails_the_task(lambda: publisher.publish(run_id=run_id, review_id=review_id))
    failpoints.crash_if_armed("publish.after_swap")
    swapped = result.outcome != "already published"
    if swapped:
        log.info("Published review %s of run %s into %s", result.review_id, run_id, config.prod_schema)
    else:
        log.info("Run %s was published already (a retry after the swap): nothing to do", run_id)
    announced = announce_publish(
        config,
        outlet_events=outlet_events,
        inlet_events=inlet_events,
        dag_run=dag_run,
        review_id=review_id,
        report=ti.xcom_pull(task_ids=AUDIT_TASK_ID),
        swapped=swapped,
    )
    return {**result.as_dict(), "decided_by": decision.get("decided_by"), "announced": announced}


def rollback(run_id: str, outlet_events: Any) -> dict[str, Any]:
    """Rollback: swap back to the production the last publish replaced, if the write schema still holds it; then
    announce the relations it put back (those whose content differs from the build it withdrew)."""
    from wap.publish import open_publisher
    from wap.publish.assets import announce, announcements
    from wap.slack import SlackMessage, send

    config = load_config()
    account = None
    if config.warehouse == "snowflake":
        from wap.publish.assets import connection_account

        account = config.snowflake_account or connection_account(config)  # before the swap: a missing one fails first
    result = _refusal_fails_the_task(open_publisher(config).rollback)
    text = (
        f"WAP rollback ({run_id}): {config.prod_schema} holds run {result.restored_run_id} again; "
        f"the build of run {result.withdrawn_run_id} is back in {config.write_schema}"
    )
    send(SlackMessage(text=text, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}]), config)
    extra = {
        "action": "rollback",
        "run_id": result.restored_run_id,
        "review_id": result.restored_review_id,
        "rollback_run_id": run_id,
        "withdrawn_run_id": result.withdrawn_run_id,
    }
    announced = announce(outlet_events, config.dag_id, announcements(config, result.relations, account=account), extra)
    return {
        "restored_run_id": result.restored_run_id,
        "withdrawn_run_id": result.withdrawn_run_id,
        "announced": announced,
    }


def count_published_rows(relation: str, triggering_asset_events: Any) -> dict[str, Any]:
    """The example consumer's task: read the published relation that triggered its run and log its row count,
    with the publish (run, review, action) the Asset event names."""
    from wap.audit.dialect import DIALECTS
    from wap.publish.assets import stored_name
    from wap.warehouse import open_warehouse

    config = load_config()
    events = [event for asset_events in (triggering_asset_events or {}).values() for event in asset_events]
    extra = dict(events[-1].extra or {}) if events else {}
    name = str(extra.get("relation") or stored_name(config, relation))
    table = DIALECTS[config.warehouse].relation(config.prod_schema, name)
    with open_warehouse(config).session(read_only=True) as query:
        ((rows,),) = query(f"select count(*) from {table}", [])
    if events:
        log.info(
            "%s.%s has %d rows, as %s of run %s (review %s) left it",
            config.prod_schema,
            name,
            rows,
            "the " + str(extra.get("action", "publish")),
            extra.get("run_id"),
            extra.get("review_id"),
        )
    else:
        log.info("%s.%s has %d rows (a run without an Asset event: triggered by hand)", config.prod_schema, name, rows)
    return {"relation": name, "rows": int(rows), **{k: extra.get(k) for k in ("action", "run_id", "review_id")}}


def _refusal_fails_the_task(action: Any) -> Any:
    """A guard's refusal fails the task at once: a retry would be refused the same way."""
    from airflow.sdk.exceptions import AirflowFailException

    from wap.publish.guards import PublishRefused

    try:
        return action()
    except PublishRefused as refusal:
        raise AirflowFailException(str(refusal)) from refusal
