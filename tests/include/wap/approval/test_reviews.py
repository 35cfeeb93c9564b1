"""Review state from Airflow's metadata, and the refusals of `wap approve|reject`."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from wap.approval import reviews
from wap.approval.reviews import Review, ReviewError, _state, decide

THIS = "0123456789ab"
NEWER = "ba9876543210"


@pytest.mark.parametrize(
    ("run_state", "review_id", "tasks", "decision", "expected"),
    [
        ("running", None, {"audit": "running"}, None, "building"),
        ("failed", None, {"audit": "failed"}, None, "failed"),
        ("running", THIS, {"await_approval": "deferred"}, None, "pending"),
        ("running", THIS, {"await_approval": None}, None, "pending"),
        ("running", THIS, {"await_approval": "success", "publish": "running"}, None, "approved"),
        ("success", THIS, {"await_approval": "success", "publish": "success"}, None, "published"),
        ("failed", THIS, {"await_approval": "success", "publish": "failed"}, None, "failed"),
        ("success", THIS, {"await_approval": "skipped"}, {"decision": "reject"}, "rejected"),
        ("success", THIS, {"await_approval": "skipped"}, {"decision": "timeout"}, "timed out"),
        ("failed", THIS, {"await_approval": "failed"}, None, "failed"),
        ("failed", THIS, {"await_approval": "deferred"}, None, "failed"),  # run killed while waiting
    ],
)
def test_state(run_state, review_id, tasks, decision, expected) -> None:
    assert _state(run_state, review_id, tasks, decision) == expected


def _open(review_id: str | None):
    review = Review("wap_dwh", "manual__1", "running", review_id, "pending", None, None, None)
    return lambda dag_id, session: review if review_id else None


@pytest.mark.parametrize(
    ("open_id", "verb", "review_id", "message"),
    [
        (None, "approve", THIS, "no review of wap_dwh is open: nothing to approve"),
        (NEWER, "approve", THIS, f"review {THIS} is not the open review of wap_dwh (the open one is {NEWER}"),
        (NEWER, "reject", THIS, "refusing to reject it"),
        (THIS, "approve", "0123", "is not a review id"),
        (THIS, "publish", THIS, "unknown decision 'publish'"),
    ],
)
def test_decide_refuses_anything_but_the_open_review(monkeypatch, open_id, verb, review_id, message) -> None:
    monkeypatch.setattr(reviews, "open_review", _open(open_id))
    with pytest.raises(ReviewError, match=message.replace("(", r"\(")):
        decide("wap_approval__wap_dwh", "wap_dwh", verb, review_id, session=None)


class _Session:
    """The two reads of ``_review``: the task states, then the audit's and the approval task's XComs (stored as the
    Task SDK serializes them through the execution API)."""

    def __init__(self, xcoms: dict[tuple[str, str], object]) -> None:
        from airflow.sdk.bases.xcom import BaseXCom

        self.rows = [
            SimpleNamespace(task_id=task_id, key=key, value=BaseXCom.serialize_value(value))
            for (task_id, key), value in xcoms.items()
        ]

    def execute(self, statement: object) -> SimpleNamespace:
        return SimpleNamespace(all=lambda: [("audit", "success"), ("await_approval", "deferred")])

    def scalars(self, statement: object) -> list[SimpleNamespace]:
        return self.rows


POLICY = {
    "verdict": {"publish": False, "source": "dbt/wap_policy.yml", "rules": [], "held": [], "failed": []},
    "policy_file": "dbt/wap_policy.yml",
    "history": {"cycles": [{"run_id": "manual__1", "audited_at": "2026-11-01T10:00:00"}], "relations": {}},
    "unusual": {"t": ["12 rows removed, outside 0-0 of the last 2 published cycles"]},
}


@pytest.mark.parametrize(
    ("pushed", "policy"),
    [
        (POLICY, POLICY),
        ({"verdict": None, "policy_file": None}, {"verdict": None, "policy_file": None}),
        (None, None),  # an audit before the review policy pushed none
        ("policy", None),
        (["policy"], None),
    ],
)
def test_the_review_carries_the_audits_policy_xcom(pushed, policy) -> None:
    run = SimpleNamespace(dag_id="wap_dwh", run_id="manual__1", state="running", start_date=None)
    xcoms = {("audit", "return_value"): {"review_id": THIS, "summary": {}}}
    if pushed is not None:
        xcoms[("audit", "policy")] = pushed
    review = reviews._review(run, session=_Session(xcoms))
    assert review.review_id == THIS and review.state == "pending"
    assert review.policy == policy


def test_a_review_without_a_policy_defaults_to_none() -> None:
    assert Review("wap_dwh", "manual__1", "running", THIS, "pending", None, None, None).policy is None
