"""The Python callables of the DAG's own tasks; the DAG file only wires them."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from wap import failpoints
from wap.approval.protocol import POLICY_USER, POLICY_XCOM_KEY
from wap.config import load_config
from wap.dbt.results import XCOM_KEY, collect

if TYPE_CHECKING:
    from wap.config import WapConfig

log = logging.getLogger(__name__)

#: How many earlier cycles the review page and ``wap status`` show beside this one.
SHOWN_CYCLES = 14


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
    review = policy_review(config, report, run_id=run_id)
    ti.xcom_push(key=POLICY_XCOM_KEY, value=review)
    open_review(config.approval_variable, report["review_id"], run_id)
    verdict = review["verdict"]
    if verdict is not None and verdict["publish"]:
        approve_by_policy(config, report["review_id"], run_id, verdict)
    elif verdict is not None:
        log.info("Review policy %s: the review waits for a person; failed: %s", verdict["source"], verdict["failed"])
    return report


def policy_review(config: WapConfig, report: dict[str, Any], *, run_id: str) -> dict[str, Any]:
    """The review policy's verdict on ``report`` against the recent published cycles, then this cycle recorded in
    the audit history; with the recent cycles for reviewers (the ``policy`` XCom of the audit).

    Never raises for the policy's or the history's sake: a policy that cannot be read or a history that cannot be
    reached gives a verdict that does not publish (a person reviews, as without a policy), with the reason.
    """
    from wap.config import WapError
    from wap.history import cycle_rows, display_series
    from wap.history.outcome import history_of
    from wap.policy import evaluate, load_policy

    path = config.policy_path
    policy, error = None, None
    try:
        policy = load_policy(path) if path is not None else None
    except WapError as problem:  # edited since the DAG was imported: a person decides
        error = str(problem)
    recent_range = policy.rows_added_in_recent_range if policy is not None else None
    window = recent_range.cycles if recent_range is not None else SHOWN_CYCLES
    history = history_of(config)
    try:  # the recent cycles to show, and the published ones the policy's range is taken over
        shown = history.recent(config.dag_id, cycles=SHOWN_CYCLES, exclude_run_id=run_id)
        published = history.recent(config.dag_id, cycles=window, exclude_run_id=run_id, outcomes=["published"])
    except Exception as problem:  # any driver's error: the review opens without history
        log.warning("Cannot read the audit history %s.audit_history: %s", config.history_schema, problem)
        shown, published = [], []
        if policy is not None:
            error = f"the audit history could not be read: {problem}"
    verdict = None
    if error is not None:
        verdict = {"publish": False, "source": str(path), "rules": [], "held": [], "failed": [], "error": error}
    elif policy is not None:
        verdict = evaluate(policy, report, published)
    rows = cycle_rows(report, review_id=report["review_id"], audited_at=datetime.now(timezone.utc))
    try:
        history.record_audit(rows)
    except Exception as problem:
        log.warning("Cannot record this audit in %s.audit_history: %s", config.history_schema, problem)
    names = [entry["name"] for entry in report["relations"]]
    return {
        "verdict": verdict,
        "policy_file": str(path) if path is not None else None,
        "history": display_series([*rows, *shown], names, cycles=SHOWN_CYCLES + 1),
        "unusual": unusual_figures(report, published, cycles=window),
    }


def unusual_figures(report: dict[str, Any], recent: Sequence[dict[str, Any]], *, cycles: int) -> dict[str, list[str]]:
    """Per relation, this cycle's rows added, removed or changed that lie outside their range over the recent
    published cycles (what a reviewer should look at first)."""
    from wap.policy import recent_ranges

    ranges = recent_ranges(recent, cycles)
    unusual: dict[str, list[str]] = {}
    for entry in report["relations"]:
        if entry["status"] in ("added", "removed"):
            continue
        for figure in ("added", "removed", "changed"):
            value = (entry.get("rows") or {}).get(figure)
            seen = ranges.get(entry["name"].lower(), {}).get(f"rows_{figure}")
            if value is None or seen is None:
                continue
            low, high, count = seen
            if not low <= value <= high:
                rows, cycles_seen = "row" if value == 1 else "rows", "cycle" if count == 1 else "cycles"
                unusual.setdefault(entry["name"], []).append(
                    f"{value:,} {rows} {figure}, outside {low:,}-{high:,} of the last {count} published {cycles_seen}"
                )
    return unusual


def approve_by_policy(config: WapConfig, review_id: str, run_id: str, verdict: dict[str, Any]) -> None:
    """Every rule of the review policy held: approve the review the way a person does (``approve <review_id>`` in
    the approval Variable, who decided in ``<variable>__by``), so the same sensor and the same publish guards
    follow. The history records the decision."""
    from airflow.sdk import Variable

    from wap.approval.protocol import decided_by_variable, value_for
    from wap.history.outcome import record_outcome

    record = {
        "review_id": review_id,
        "verb": "approve",
        "user": POLICY_USER,
        "via": f"policy {verdict['source']}",
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rules": verdict["held"],
    }
    Variable.set(decided_by_variable(config.approval_variable), json.dumps(record))
    Variable.set(
        config.approval_variable,
        value_for("approve", review_id),
        description=f"approve by policy ({verdict['source']}): every rule held",
    )
    log.info("Review %s approved by policy %s: every rule held (%s)", review_id, verdict["source"], verdict["held"])
    record_outcome(config, run_id, "approved", decided_by=POLICY_USER, rules=verdict["held"])


def open_review(variable: str, review_id: str, run_id: str) -> None:
    """Set the approval Variable to ``pending <review_id>``: any earlier decision no longer applies."""
    from airflow.sdk import Variable

    from wap.approval.protocol import value_for

    value = value_for("pending", review_id)
    Variable.set(variable, value, description=f"WAP review of run {run_id}: set to 'approve|reject {review_id}'")
    log.info("Review %s is open: set Variable %s to 'approve %s' to publish", review_id, variable, review_id)


def review_closed(context: Any) -> None:
    """``await_approval``'s skip (a reject or the timeout): the audit history records the cycle not published, and
    who rejected it. Best effort: the next audit closes an unrecorded review the same way."""
    from wap.approval.protocol import APPROVAL_TASK_ID, DECISION_XCOM_KEY
    from wap.history.outcome import record_outcome

    decision = context["ti"].xcom_pull(task_ids=APPROVAL_TASK_ID, key=DECISION_XCOM_KEY) or {}
    record_outcome(load_config(), context["run_id"], "not published", decided_by=decision.get("decided_by"))


def publish(ti: Any, run_id: str, dag_run: Any, outlet_events: Any, inlet_events: Any) -> dict[str, Any]:
    """Publish on the embedded warehouse: swap the write schema with production, for the review
    ``await_approval`` approved. (Snowflake's publish task is :class:`~wap.publish.operator.SnowflakePublishOperator`.)

    The guards run in the warehouse right before the swap (:mod:`wap.publish.guards`); a retry after a successful
    swap is reported as a no-op. Then the relations it put into production are announced as Assets
    (:mod:`wap.publish.assets`): once per publish, whichever try announces it.
    """
    from wap.approval.protocol import AUDIT_TASK_ID, DECISION_XCOM_KEY, approved_by, approved_review_id
    from wap.history.outcome import record_outcome
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
        by = approved_by(decision.get("decided_by"))
        log.info("Published review %s of run %s into %s%s", result.review_id, run_id, config.prod_schema, by)
    else:
        log.info("Run %s was published already (a retry after the swap): nothing to do", run_id)
    record_outcome(config, run_id, "published", decided_by=decision.get("decided_by"))
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
    from wap.history.outcome import record_outcome
    from wap.publish import open_publisher
    from wap.publish.assets import announce, announcements
    from wap.slack import SlackMessage, send

    config = load_config()
    account = None
    if config.warehouse == "snowflake":
        from wap.publish.assets import connection_account

        account = config.snowflake_account or connection_account(config)  # before the swap: a missing one fails first
    result = _refusal_fails_the_task(open_publisher(config).rollback)
    record_outcome(config, result.withdrawn_run_id, "rolled back")
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
