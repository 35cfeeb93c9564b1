"""The approval trigger: runs in the triggerer and watches the approval Variable for one review.

It lives in the installed ``wap`` package, not in ``dags/``: the triggerer imports triggers by class path and
cannot import from the DAG bundle. It reads the Variable through the Task SDK (the triggerer's supervisor
answers), so it works the same under ``airflow standalone``, separate components and ``airflow dags test``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from wap.approval.protocol import evaluate


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def _read_variable(key: str) -> str | None:
    from airflow.sdk import Variable
    from asgiref.sync import sync_to_async

    return await sync_to_async(Variable.get)(key, default=None)


class ApprovalTrigger(BaseTrigger):
    """Fires once: ``approved`` or ``rejected`` for ``review_id``, or ``timeout`` at ``deadline`` (ISO, UTC).

    Values naming another review, a bare verb, or garbage are logged (once per distinct value) and waited out.
    A Variable that cannot be read is logged and retried: only a decision or the deadline ends the wait.
    """

    def __init__(self, *, variable: str, review_id: str, deadline: str, poke_interval: float = 15.0) -> None:
        super().__init__()
        self.variable = variable
        self.review_id = review_id
        self.deadline = deadline
        self.poke_interval = float(poke_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "wap.approval.trigger.ApprovalTrigger",
            {
                "variable": self.variable,
                "review_id": self.review_id,
                "deadline": self.deadline,
                "poke_interval": self.poke_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = datetime.fromisoformat(self.deadline)
        last_reason = None
        while True:
            try:
                value = await _read_variable(self.variable)
            except Exception as error:  # the Variable store is down: keep waiting, never decide
                reason = f"cannot read Variable {self.variable}: {error}"
            else:
                verdict = evaluate(value, self.review_id)
                if verdict.outcome != "waiting":
                    self.log.info("%s: %s", self.variable, verdict.reason)
                    yield TriggerEvent(self._event(verdict.outcome, verdict.reason, value))
                    return
                reason = verdict.reason
            if reason != last_reason:
                self.log.info("Waiting for %s: %s", self.variable, reason)
                last_reason = reason
            remaining = (deadline - _now()).total_seconds()
            if remaining <= 0:
                message = f"review {self.review_id} timed out at {self.deadline} without a decision"
                self.log.info(message)
                yield TriggerEvent(self._event("timeout", message, None))
                return
            await asyncio.sleep(min(self.poke_interval, remaining))

    def _event(self, outcome: str, reason: str, value: str | None) -> dict[str, Any]:
        # The deadline travels in the event too: `airflow dags test` resumes with the event alone.
        return {
            "outcome": outcome,
            "review_id": self.review_id,
            "reason": reason,
            "value": value,
            "deadline": self.deadline,
        }
