"""The approval gate: a deferrable sensor that waits for ``approve|reject <review_id>`` of this run's review.

It checks the Variable once in the worker, then defers to :class:`~wap.approval.trigger.ApprovalTrigger` and holds no
worker slot while the reviewer reads. When the trigger fires, the worker reads the Variable again: the value at
that moment decides (a reviewer may have changed their mind), and an undecided value defers again.

- ``approve <this id>``: success; the decision is the task's XCom (``return_value`` and ``decision``).
- ``reject <this id>`` or the timeout: the task is skipped, so ``publish`` is skipped; never an approval.
- anything else: logged with the reason, and the wait goes on.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import BaseSensorOperator, Variable
from airflow.sdk.exceptions import AirflowSkipException

from wap.approval.protocol import DECISION_XCOM_KEY, decided_by_variable, evaluate
from wap.approval.trigger import ApprovalTrigger

#: How long past the review's deadline the deferral may last before the scheduler fails the task (a triggerer
#: that is down cannot deliver the timeout).
DEFER_GRACE = timedelta(minutes=5)


class AwaitApprovalSensor(BaseSensorOperator):
    """Wait for the reviewer's decision on the review opened by ``review_task_id`` (its XCom's ``review_id``)."""

    ui_color = "#f6d365"

    def __init__(
        self,
        *,
        approval_variable: str,
        review_timeout: timedelta,
        review_task_id: str = "audit",
        poke_interval: float = 15.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=review_timeout.total_seconds(), **kwargs)
        self.approval_variable = approval_variable
        self.review_timeout = review_timeout
        self.review_task_id = review_task_id

    def poke(self, context: Any) -> bool:
        return evaluate(self._read(), self._review_id(context)).outcome != "waiting"

    def execute(self, context: Any) -> Any:
        review_id = self._review_id(context)
        deadline = (datetime.now(timezone.utc) + self.review_timeout).isoformat()
        self.log.info("Review %s is open until %s: waiting for %s", review_id, deadline, self.approval_variable)
        return self._decide_or_defer(context, review_id, deadline)

    def execute_complete(self, context: Any, event: dict[str, Any], deadline: str | None = None) -> Any:
        review_id = self._review_id(context)
        if event.get("review_id") != review_id:  # cannot happen unless the trigger was tampered with
            raise RuntimeError(f"approval event for review {event.get('review_id')!r}, expected {review_id}")
        if event["outcome"] == "timeout":
            return self._finish(context, "timeout", review_id, event["reason"], None)
        return self._decide_or_defer(context, review_id, deadline or event["deadline"])

    # -- pieces ---------------------------------------------------------------------------------------------
    def _decide_or_defer(self, context: Any, review_id: str, deadline: str) -> Any:
        verdict = evaluate(self._read(), review_id)
        if verdict.outcome != "waiting":
            return self._finish(context, verdict.outcome, review_id, verdict.reason, verdict.value)
        self.log.info("Not decided: %s. Deferring (no worker slot is held while waiting).", verdict.reason)
        self.defer(
            trigger=ApprovalTrigger(
                variable=self.approval_variable,
                review_id=review_id,
                deadline=deadline,
                poke_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            kwargs={"deadline": deadline},
            # The trigger ends the wait at the deadline. This bound is for a triggerer that is down: past it the
            # scheduler fails the task (nothing is published, the failure alert goes out) instead of it waiting
            # forever.
            timeout=_until(deadline) + DEFER_GRACE,
        )

    def _finish(self, context: Any, outcome: str, review_id: str, reason: str, value: str | None) -> Any:
        decision = {
            "decision": {"approved": "approve", "rejected": "reject", "timeout": "timeout"}[outcome],
            "review_id": review_id,
            "reason": reason,
            "value": value,
            "decided_by": self._decided_by(review_id, outcome),
            "decided_at": _now_iso(),
        }
        context["ti"].xcom_push(key=DECISION_XCOM_KEY, value=decision)
        if outcome == "approved":
            self.log.info("Review %s approved%s: publish may proceed", review_id, _by(decision))
            return decision
        raise AirflowSkipException(f"Review {review_id} {outcome}{_by(decision)}: nothing will be published")

    def _read(self) -> str | None:
        return Variable.get(self.approval_variable, default=None)

    def _review_id(self, context: Any) -> str:
        audit = context["ti"].xcom_pull(task_ids=self.review_task_id)
        if not audit or not audit.get("review_id"):
            raise RuntimeError(f"task {self.review_task_id!r} opened no review (its XCom has no review_id)")
        return audit["review_id"]

    def _decided_by(self, review_id: str, outcome: str) -> str | None:
        """Who decided, if ``wap approve|reject`` or the review view recorded it for this very decision."""
        if outcome == "timeout":
            return None
        raw = Variable.get(decided_by_variable(self.approval_variable), default=None)
        try:
            record = json.loads(raw) if raw else None
        except ValueError:
            return None
        verb = "approve" if outcome == "approved" else "reject"
        if isinstance(record, dict) and record.get("review_id") == review_id and record.get("verb") == verb:
            return record.get("user")
        return None


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def _by(decision: dict[str, Any]) -> str:
    return f" by {decision['decided_by']}" if decision.get("decided_by") else ""


def _until(deadline: str) -> timedelta:
    """Time left until ``deadline`` (ISO 8601; without an offset it is UTC), never negative."""
    moment = datetime.fromisoformat(deadline)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(moment - datetime.now(timezone.utc), timedelta(0))
