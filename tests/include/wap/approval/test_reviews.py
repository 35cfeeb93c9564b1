"""Review state from Airflow's metadata, and the refusals of `wap approve|reject`."""

from __future__ import annotations

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
