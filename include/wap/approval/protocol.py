"""The review protocol: the approval Variable's values and what they mean for one open review.

The Variable ``wap_approval__<dag_id>`` holds exactly one of::

    pending <review_id>    set by the audit task when it opens the review
    approve <review_id>    set by a reviewer: publish exactly that report
    reject <review_id>     set by a reviewer: do not publish it

The verb is case-insensitive; the review id is the 12 lowercase hex characters the audit printed. Anything else
(a bare ``approve``, another review's id, extra words) is invalid: it never publishes, and the sensor logs why
and keeps waiting. No module here imports Airflow: the trigger, the sensor, the CLI and the UI share it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

VERBS = ("pending", "approve", "reject")
REVIEW_ID = re.compile(r"[0-9a-f]{12}")
_VALUE = re.compile(r"(?P<verb>[A-Za-z]+) (?P<review_id>\S+)")

Outcome = Literal["approved", "rejected", "waiting"]

#: The approval task's XCom key for its decision (also its return value on approval).
DECISION_XCOM_KEY = "decision"
#: The tasks of the review cycle: the audit (its return value is the report with its ``review_id``), the approval
#: sensor and the publish.
AUDIT_TASK_ID = "audit"
#: The audit task's XCom key for the review policy's verdict and the recent cycles beside this one.
POLICY_XCOM_KEY = "policy"
#: Who decided, when the review policy approved a review (``decided_by`` of the decision, the history's column).
POLICY_USER = "policy"
APPROVAL_TASK_ID = "await_approval"
PUBLISH_TASK_ID = "publish"


def approved_by(decided_by: str | None) -> str:
    """How a publish log line names who approved: `` (approved by policy: every rule held)``, `` (approved by
    alice)``, or nothing when the Variable was set by hand."""
    if decided_by == POLICY_USER:
        return " (approved by policy: every rule held)"
    return f" (approved by {decided_by})" if decided_by else ""


def decided_by_variable(approval_variable: str) -> str:
    """Where ``wap approve`` and the review view record who decided (the approval value has no room for it)."""
    return f"{approval_variable}__by"


class InvalidDecision(ValueError):
    """A value of the approval Variable that is not ``pending|approve|reject <review_id>``."""


@dataclass(frozen=True)
class Decision:
    verb: str  # one of VERBS, lower case
    review_id: str

    def __str__(self) -> str:
        return f"{self.verb} {self.review_id}"


@dataclass(frozen=True)
class Verdict:
    """What the Variable's current value means for the open review ``review_id``."""

    outcome: Outcome
    reason: str
    value: str | None


def validate_review_id(review_id: str) -> str:
    if not REVIEW_ID.fullmatch(review_id or ""):
        raise InvalidDecision(f"{review_id!r} is not a review id (12 lowercase hex characters, e.g. 0123456789ab)")
    return review_id


def parse(value: str | None) -> Decision:
    """The decision in ``value``; :class:`InvalidDecision` with the reason if it is not exactly one."""
    if value is None:
        raise InvalidDecision("the Variable is not set")
    text = value.strip()
    match = _VALUE.fullmatch(text)
    if match is None:
        if text.lower() in VERBS:
            raise InvalidDecision(f"{value!r} names no review id: write '{text.lower()} <review_id>'")
        raise InvalidDecision(f"{value!r} is not 'pending|approve|reject <review_id>'")
    verb = match["verb"].lower()
    if verb not in VERBS:
        raise InvalidDecision(f"{value!r}: unknown verb {match['verb']!r} (expected approve or reject)")
    return Decision(verb, validate_review_id(match["review_id"]))


def value_for(verb: str, review_id: str) -> str:
    """The Variable value for ``verb`` on ``review_id`` (validated)."""
    if verb not in VERBS:
        raise InvalidDecision(f"unknown verb {verb!r} (expected one of {', '.join(VERBS)})")
    return str(Decision(verb, validate_review_id(review_id)))


def evaluate(value: str | None, review_id: str) -> Verdict:
    """Approved or rejected only by ``approve|reject <review_id>`` for this very review; anything else waits."""
    try:
        decision = parse(value)
    except InvalidDecision as error:
        return Verdict("waiting", f"invalid value: {error}", value)
    if decision.review_id != review_id:
        return Verdict(
            "waiting",
            f"{value!r} names review {decision.review_id}, but the open review is {review_id}: ignored",
            value,
        )
    if decision.verb == "approve":
        return Verdict("approved", f"review {review_id} approved", value)
    if decision.verb == "reject":
        return Verdict("rejected", f"review {review_id} rejected", value)
    return Verdict("waiting", f"review {review_id} is pending", value)


def approved_review_id(decision: dict | None) -> str | None:
    """The review id the approval task's XCom ``decision`` approved; None unless it is an approval."""
    if decision and decision.get("decision") == "approve" and decision.get("review_id"):
        return str(decision["review_id"])
    return None
