"""Airflow callbacks that post the review cycle to Slack: a notifier built on the Task SDK's ``BaseNotifier``.

Wire them in the DAG (they read the audit's and the approval sensor's XComs; nothing here runs at parse time)::

    audit = PythonOperator(..., on_success_callback=on_review_opened())
    await_approval = AwaitApprovalSensor(..., on_skipped_callback=on_rejected())   # reject or timeout
    publish = ...(..., on_success_callback=on_published())
    DAG(..., default_args={..., "on_failure_callback": on_failure()})

Delivery is :func:`wap.slack.notify.send`: webhook, bot token or the local outbox, and it never raises; a message
that cannot even be built is logged too. A callback never fails, blocks or approves anything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from airflow.sdk.bases.notifier import BaseNotifier

from wap.approval.protocol import APPROVAL_TASK_ID, AUDIT_TASK_ID, DECISION_XCOM_KEY, POLICY_XCOM_KEY
from wap.slack import messages
from wap.slack.messages import SlackMessage
from wap.slack.notify import send

log = logging.getLogger(__name__)

Kind = Literal["review_opened", "published", "rejected", "task_failed"]
KINDS: tuple[str, ...] = ("review_opened", "published", "rejected", "task_failed")

DEFAULT_BASE_URL = "http://localhost:8080"


def airflow_base_url() -> str:
    """Airflow's configured ``[api] base_url`` (the UI links), else ``http://localhost:8080``."""
    try:
        from airflow.sdk.configuration import conf

        value = conf.get("api", "base_url", fallback=None)
    except Exception:
        value = None
    return (value or DEFAULT_BASE_URL).rstrip("/")


class WapSlackNotifier(BaseNotifier):
    """Posts one ``kind`` of message of the review cycle, built from the callback's context.

    ``review_opened`` (the alert with the approval instruction), ``published``, ``rejected`` (a reject or the
    review's timeout), ``task_failed``. The report comes from ``audit_task_id``'s return value (the report with
    its ``review_id``), the decision from ``approval_task_id``'s XCom ``decision``. ``variable`` overrides the
    approval Variable named in the instruction (default: the configured ``wap_approval__<dag_id>``).
    """

    template_fields = ()  # the message is built from data, never rendered as a Jinja template

    def __init__(
        self,
        kind: Kind,
        *,
        audit_task_id: str = AUDIT_TASK_ID,
        approval_task_id: str = APPROVAL_TASK_ID,
        variable: str | None = None,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown Slack message kind {kind!r}: use one of {', '.join(KINDS)}")
        self.kind = kind
        self.audit_task_id = audit_task_id
        self.approval_task_id = approval_task_id
        self.variable = variable

    def notify(self, context: Mapping[str, Any]) -> None:
        try:
            message = self.build(context)
        except Exception:
            log.exception("Cannot build the Slack %s message; nothing was sent, nothing else changes", self.kind)
            return
        send(message)

    def build(self, context: Mapping[str, Any]) -> SlackMessage:
        """The message of this notifier's kind for ``context`` (a task or DAG callback's context)."""
        ti = context.get("ti") or context.get("task_instance")
        dag_run = context.get("dag_run")
        dag_id = _first(getattr(ti, "dag_id", None), getattr(dag_run, "dag_id", None), _dag_id(context))
        run_id = _first(context.get("run_id"), getattr(ti, "run_id", None), getattr(dag_run, "run_id", None))
        base = airflow_base_url()
        run_link = messages.run_url(base, dag_id, run_id)
        report_link = messages.report_url(base, dag_id, run_id)
        if self.kind == "task_failed":
            task_id = getattr(ti, "task_id", None)
            try_number = getattr(ti, "try_number", None)
            return messages.task_failed(
                dag_id=dag_id,
                run_id=run_id,
                task_id=task_id,
                try_number=try_number,
                exception=context.get("exception") or context.get("reason"),
                log_url=messages.task_url(base, dag_id, run_id, task_id, try_number) if task_id else None,
                run_url=run_link,
            )
        report, review_id = audit_result(_pull(ti, self.audit_task_id))
        verdict = policy_verdict(_pull(ti, self.audit_task_id, POLICY_XCOM_KEY))
        if self.kind == "review_opened":
            if report is None or review_id is None:
                raise ValueError(f"task {self.audit_task_id!r} returned no report with a review_id")
            return messages.review_opened(
                report,
                review_id,
                dag_id=dag_id,
                run_id=run_id,
                report_url=report_link,
                run_url=run_link,
                variable=self.variable or _approval_variable(),
                policy=verdict,
            )
        decision = _pull(ti, self.approval_task_id, DECISION_XCOM_KEY) or {}
        review_id = review_id or decision.get("review_id") or "unknown"
        if self.kind == "published":
            outcome = _pull(ti, getattr(ti, "task_id", None) or "publish")
            announced = outcome.get("announced") if isinstance(outcome, Mapping) else None
            if announced == [] and outcome.get("outcome") == "already published":  # the earlier try's events
                announced = None
            return messages.published(
                report,
                review_id,
                dag_id=dag_id,
                run_id=run_id,
                run_url=run_link,
                report_url=report_link,
                decided_by=decision.get("decided_by"),
                announced=[item["relation"] for item in announced] if isinstance(announced, list) else None,
                rules=(verdict or {}).get("held"),
            )
        return messages.rejected(
            review_id,
            dag_id=dag_id,
            run_id=run_id,
            run_url=run_link,
            report_url=report_link,
            decision=decision.get("decision") or "reject",
            decided_by=decision.get("decided_by"),
            reason=decision.get("reason"),
            report=report,
        )


def audit_result(value: Any) -> tuple[dict[str, Any] | None, str | None]:
    """``(report, review_id)`` from the audit's return value: the report with a ``review_id`` key, or
    ``{"report": ..., "review_id": ...}``; ``(None, None)`` when there is none."""
    if not isinstance(value, Mapping):
        return None, None
    if isinstance(value.get("report"), Mapping):
        return dict(value["report"]), value.get("review_id")
    report = {key: item for key, item in value.items() if key != "review_id"}
    return (report if "summary" in report else None), value.get("review_id")


def policy_verdict(value: Any) -> dict[str, Any] | None:
    """The review policy's verdict in the audit's ``policy`` XCom; None without a policy."""
    if isinstance(value, Mapping) and isinstance(value.get("verdict"), Mapping):
        return dict(value["verdict"])
    return None


def _approval_variable() -> str:
    """The approval Variable the sensor watches (from the configuration, like the sensor's)."""
    from wap.config import load_config

    return load_config().approval_variable


def _pull(ti: Any, task_id: str, key: str = "return_value") -> Any:
    if ti is None:
        return None
    return ti.xcom_pull(task_ids=task_id, key=key)


def _dag_id(context: Mapping[str, Any]) -> str | None:
    dag = context.get("dag")
    return getattr(dag, "dag_id", None)


def _first(*values: Any) -> str:
    return next((str(value) for value in values if value), "unknown")


def on_review_opened(**kwargs: Any) -> WapSlackNotifier:
    """The alert to reviewers; use as the audit task's ``on_success_callback``."""
    return WapSlackNotifier("review_opened", **kwargs)


def on_published(**kwargs: Any) -> WapSlackNotifier:
    """What was published and who approved it; use as the publish task's ``on_success_callback``."""
    return WapSlackNotifier("published", **kwargs)


def on_rejected(**kwargs: Any) -> WapSlackNotifier:
    """A reject or a timeout: nothing published; use as the approval sensor's ``on_skipped_callback``."""
    return WapSlackNotifier("rejected", **kwargs)


def on_failure(**kwargs: Any) -> WapSlackNotifier:
    """Any task that failed after its retries; use as ``on_failure_callback`` in the DAG's ``default_args``."""
    return WapSlackNotifier("task_failed", **kwargs)
