"""The approval Variable's protocol: strict parsing, and what a value means for one open review."""

from __future__ import annotations

import pytest

from wap.approval.protocol import Decision, InvalidDecision, evaluate, parse, value_for

THIS = "0123456789ab"
OTHER = "ba9876543210"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"approve {THIS}", Decision("approve", THIS)),
        (f"APPROVE {THIS}", Decision("approve", THIS)),
        (f"Reject {THIS}", Decision("reject", THIS)),
        (f"pending {THIS}", Decision("pending", THIS)),
        (f"  approve {THIS}\n", Decision("approve", THIS)),  # what a shell or a text box may add around it
    ],
)
def test_valid_values(value: str, expected: Decision) -> None:
    assert parse(value) == expected
    assert str(expected) == f"{expected.verb} {THIS}"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "not set"),
        ("", "is not 'pending|approve|reject <review_id>'"),
        ("approve", "names no review id"),
        ("APPROVE", "names no review id"),
        ("yes", "is not 'pending|approve|reject"),
        (f"approved {THIS}", "unknown verb 'approved'"),
        (f"publish {THIS}", "unknown verb"),
        (f"approve {THIS.upper()}", "not a review id"),
        (f"approve {THIS[:-1]}", "not a review id"),
        (f"approve {THIS}0", "not a review id"),
        (f"approve {THIS} please", "is not 'pending|approve|reject"),
        (f"approve  {THIS}", "is not 'pending|approve|reject"),
        (f"approve\t{THIS}", "is not 'pending|approve|reject"),
        (f"approve:{THIS}", "is not 'pending|approve|reject"),
        (f"approve {THIS};reject {THIS}", "is not 'pending|approve|reject"),
        (f"approve {THIS};drop", "not a review id"),
    ],
)
def test_invalid_values_say_why(value: str | None, reason: str) -> None:
    with pytest.raises(InvalidDecision, match=reason.replace("|", r"\|").replace("(", r"\(")):
        parse(value)


def test_value_for_round_trips_and_validates() -> None:
    for verb in ("pending", "approve", "reject"):
        assert parse(value_for(verb, THIS)) == Decision(verb, THIS)
    with pytest.raises(InvalidDecision):
        value_for("approve", "not-an-id")
    with pytest.raises(InvalidDecision):
        value_for("maybe", THIS)


@pytest.mark.parametrize(
    ("value", "outcome", "reason"),
    [
        (f"approve {THIS}", "approved", "approved"),
        (f"reject {THIS}", "rejected", "rejected"),
        (f"pending {THIS}", "waiting", "pending"),
        (f"approve {OTHER}", "waiting", f"names review {OTHER}, but the open review is {THIS}"),
        (f"reject {OTHER}", "waiting", f"names review {OTHER}"),
        (f"pending {OTHER}", "waiting", f"names review {OTHER}"),
        ("approve", "waiting", "invalid value"),
        ("lgtm", "waiting", "invalid value"),
        (None, "waiting", "not set"),
    ],
)
def test_only_this_reviews_decision_decides(value: str | None, outcome: str, reason: str) -> None:
    verdict = evaluate(value, THIS)
    assert verdict.outcome == outcome
    assert reason in verdict.reason
    assert verdict.value == value
