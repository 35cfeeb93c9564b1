"""AwaitApprovalSensor: decides in the worker when it can, defers otherwise, and never publishes by mistake."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException, TaskDeferred

from wap.approval.protocol import DECISION_XCOM_KEY as XCOM_KEY
from wap.approval.protocol import decided_by_variable
from wap.approval.sensor import DEFER_GRACE, AwaitApprovalSensor
from wap.approval.trigger import ApprovalTrigger

THIS = "0123456789ab"
OTHER = "ba9876543210"
VARIABLE = "wap_approval__wap_dwh"


class FakeTI:
    def __init__(self, audit: dict[str, Any] | None) -> None:
        self.audit = audit
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str) -> Any:
        assert task_ids == "audit"
        return self.audit

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@pytest.fixture
def variable(monkeypatch: pytest.MonkeyPatch):
    """Set the approval Variable (Airflow reads ``AIRFLOW_VAR_*`` like any other Variable backend)."""

    def set_value(value: str | None, name: str = VARIABLE) -> None:
        env = f"AIRFLOW_VAR_{name.upper()}"
        if value is None:
            monkeypatch.delenv(env, raising=False)
        else:
            monkeypatch.setenv(env, value)

    return set_value


def sensor() -> AwaitApprovalSensor:
    return AwaitApprovalSensor(
        task_id="await_approval", approval_variable=VARIABLE, review_timeout=timedelta(hours=2), poke_interval=5
    )


def context(audit: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"ti": FakeTI({"review_id": THIS, "summary": {}} if audit is None else audit)}


def test_approval_already_set_succeeds_without_deferring(variable) -> None:
    variable(f"approve {THIS}")
    ctx = context()
    decision = sensor().execute(ctx)
    assert decision["decision"] == "approve"
    assert decision["review_id"] == THIS
    assert decision["value"] == f"approve {THIS}"
    assert ctx["ti"].pushed[XCOM_KEY] == decision


@pytest.mark.parametrize("value", [f"pending {THIS}", f"approve {OTHER}", "approve", "yes please", None])
def test_anything_but_a_decision_on_this_review_defers(variable, value) -> None:
    variable(value)
    with pytest.raises(TaskDeferred) as deferred:
        sensor().execute(context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, ApprovalTrigger)
    assert (trigger.variable, trigger.review_id, trigger.poke_interval) == (VARIABLE, THIS, 5.0)
    left = datetime.fromisoformat(trigger.deadline) - datetime.now(timezone.utc)
    assert timedelta(hours=1, minutes=59) < left <= timedelta(hours=2)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.kwargs == {"deadline": trigger.deadline}
    # A triggerer that is down cannot deliver the timeout: the deferral itself ends soon after the deadline.
    assert abs(deferred.value.timeout - (left + DEFER_GRACE)) < timedelta(seconds=5)


def test_reject_skips_so_publish_is_skipped(variable) -> None:
    variable(f"reject {THIS}")
    ctx = context()
    with pytest.raises(AirflowSkipException, match=f"Review {THIS} rejected: nothing will be published"):
        sensor().execute(ctx)
    assert ctx["ti"].pushed[XCOM_KEY]["decision"] == "reject"


def test_timeout_event_skips_and_is_never_an_approval(variable) -> None:
    variable(f"approve {THIS}")  # even an approval arriving after the timeout fired does not count
    ctx = context()
    event = {"outcome": "timeout", "review_id": THIS, "reason": "timed out", "value": None}
    with pytest.raises(AirflowSkipException, match="timeout"):
        sensor().execute_complete(ctx, event, deadline="2026-01-01T00:00:00+00:00")
    assert ctx["ti"].pushed[XCOM_KEY]["decision"] == "timeout"


def test_the_worker_rereads_the_variable_when_the_trigger_fires(variable) -> None:
    """The trigger saw an approval, but the reviewer changed it before the worker resumed: wait again."""
    variable(f"pending {THIS}")
    event = {"outcome": "approved", "review_id": THIS, "reason": "approved", "value": f"approve {THIS}"}
    with pytest.raises(TaskDeferred) as deferred:
        sensor().execute_complete(context(), event, deadline="2099-01-01T00:00:00+00:00")
    assert deferred.value.trigger.deadline == "2099-01-01T00:00:00+00:00"  # the deadline does not move
    variable(f"approve {THIS}")
    assert sensor().execute_complete(context(), event, deadline="2099-01-01T00:00:00+00:00")["decision"] == "approve"


def test_resuming_with_the_event_alone_keeps_its_deadline(variable) -> None:
    """`airflow dags test` resumes with the event only (no defer kwargs): the deadline comes from the event."""
    variable(f"pending {THIS}")
    event = {"outcome": "approved", "review_id": THIS, "reason": "", "value": "", "deadline": "2099-01-01T00:00:00"}
    with pytest.raises(TaskDeferred) as deferred:
        sensor().execute_complete(context(), event)
    assert deferred.value.trigger.deadline == "2099-01-01T00:00:00"


def test_an_event_for_another_review_is_refused(variable) -> None:
    variable(f"approve {OTHER}")
    event = {"outcome": "approved", "review_id": OTHER, "reason": "approved", "value": f"approve {OTHER}"}
    with pytest.raises(RuntimeError, match="expected 0123456789ab"):
        sensor().execute_complete(context(), event, deadline="2099-01-01T00:00:00+00:00")


def test_no_review_to_wait_for_fails_clearly(variable) -> None:
    variable(f"approve {THIS}")
    with pytest.raises(RuntimeError, match="opened no review"):
        sensor().execute(context(audit={}))


def test_who_decided_when_it_was_recorded_for_this_decision(variable) -> None:
    variable(f"approve {THIS}")
    by = decided_by_variable(VARIABLE)
    variable(json.dumps({"review_id": THIS, "verb": "approve", "user": "kari"}), by)
    assert sensor().execute(context())["decided_by"] == "kari"
    variable(json.dumps({"review_id": OTHER, "verb": "approve", "user": "ola"}), by)  # another review's record
    assert sensor().execute(context())["decided_by"] is None
    variable(json.dumps({"review_id": THIS, "verb": "reject", "user": "ola"}), by)  # another decision's record
    assert sensor().execute(context())["decided_by"] is None
    variable("not json", by)
    assert sensor().execute(context())["decided_by"] is None
