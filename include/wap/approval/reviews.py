"""Reviews as Airflow's metadata knows them: for the `wap` CLI and the review view on the API server.

Reads the DAG runs, the audit's XCom (report and review id), the approval task's state and decision, and the
approval Variable, straight from the metadata database: these callers run where Airflow's own CLI and API
server run. Tasks never import this module (Airflow 3 tasks have no database access).
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from wap.approval.protocol import (
    APPROVAL_TASK_ID,
    AUDIT_TASK_ID,
    DECISION_XCOM_KEY,
    POLICY_XCOM_KEY,
    PUBLISH_TASK_ID,
    InvalidDecision,
    decided_by_variable,
    evaluate,
    parse,
    validate_review_id,
    value_for,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

WAITING_STATES = {"deferred", "running", "queued", "scheduled", "up_for_reschedule", "up_for_retry", None}


class ReviewError(ValueError):
    """A decision that cannot be taken (no open review, another review's id); the message says why."""


@dataclass(frozen=True)
class Review:
    dag_id: str
    run_id: str
    run_state: str
    review_id: str | None
    state: str  # building, pending, approved, rejected, timed out, published, failed
    decision: dict[str, Any] | None
    report: dict[str, Any] | None
    started: datetime | None
    #: The audit's ``policy`` XCom: the review policy's verdict, the recent cycles beside this one, what is unusual.
    policy: dict[str, Any] | None = None

    @property
    def is_open(self) -> bool:
        return self.state == "pending"


def _state(run_state: str, review_id: str | None, tasks: dict[str, str | None], decision: dict | None) -> str:
    approval, publish = tasks.get(APPROVAL_TASK_ID), tasks.get(PUBLISH_TASK_ID)
    if review_id is None:
        return "failed" if run_state == "failed" else "building"
    if publish == "success":
        return "published"
    if approval == "success":
        return "failed" if run_state == "failed" else "approved"
    if approval == "skipped" and decision:
        return {"reject": "rejected", "timeout": "timed out"}.get(decision.get("decision"), "rejected")
    if approval in WAITING_STATES and run_state in ("running", "queued"):
        return "pending"
    return "failed"


def list_reviews(dag_id: str, *, session: Session, limit: int = 50) -> list[Review]:
    """The DAG's runs, newest first, with their review state."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    runs = session.scalars(
        select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.run_after.desc()).limit(limit)
    ).all()
    return [_review(run, session=session) for run in runs]


def get_review(dag_id: str, run_id: str, *, session: Session) -> Review | None:
    """The review of one run, or None when the DAG has no such run."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    return None if run is None else _review(run, session=session)


def _review(run: Any, *, session: Session) -> Review:
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    dag_id = run.dag_id
    tasks = dict(
        session.execute(
            select(TaskInstance.task_id, TaskInstance.state).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run.run_id,
                TaskInstance.task_id.in_([AUDIT_TASK_ID, APPROVAL_TASK_ID, PUBLISH_TASK_ID]),
            )
        ).all()
    )
    xcoms = {
        (row.task_id, row.key): XComModel.deserialize_value(row)
        for row in session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=dag_id, task_ids=[AUDIT_TASK_ID, APPROVAL_TASK_ID])
        )
    }
    report = xcoms.get((AUDIT_TASK_ID, "return_value"))
    report = report if isinstance(report, dict) else None
    decision = xcoms.get((APPROVAL_TASK_ID, DECISION_XCOM_KEY))
    review_id = report.get("review_id") if report else None
    run_state = str(run.state.value if hasattr(run.state, "value") else run.state)
    task_states = {task: (str(state.value) if hasattr(state, "value") else state) for task, state in tasks.items()}
    return Review(
        dag_id=dag_id,
        run_id=run.run_id,
        run_state=run_state,
        review_id=review_id,
        state=_state(run_state, review_id, task_states, decision),
        decision=decision if isinstance(decision, dict) else None,
        report=report,
        started=run.start_date,
        policy=policy if isinstance(policy := xcoms.get((AUDIT_TASK_ID, POLICY_XCOM_KEY)), dict) else None,
    )


def open_review(dag_id: str, *, session: Session) -> Review | None:
    """The review waiting for a decision, if any (one at a time: the DAG runs one run at a time)."""
    return next((review for review in list_reviews(dag_id, session=session) if review.is_open), None)


def decide(
    approval_variable: str,
    dag_id: str,
    verb: str,
    review_id: str,
    *,
    session: Session,
    user: str | None = None,
    user_id: str | None = None,
    via: str = "cli",
) -> str:
    """Set the approval Variable to ``<verb> <review_id>`` if that is the open review; returns the value set.

    Refuses (``ReviewError``) an id that is not the open review's: a stale page or an old Slack message
    cannot decide a newer review. Records who decided in ``<variable>__by`` for the sensor's XCom.
    """
    from airflow.models.variable import Variable

    if verb not in ("approve", "reject"):
        raise ReviewError(f"unknown decision {verb!r}: approve or reject")
    try:
        validate_review_id(review_id)
    except InvalidDecision as error:
        raise ReviewError(str(error)) from None
    review = open_review(dag_id, session=session)
    if review is None:
        raise ReviewError(f"no review of {dag_id} is open: nothing to {verb}")
    if review.review_id != review_id:
        raise ReviewError(
            f"review {review_id} is not the open review of {dag_id} (the open one is {review.review_id}, "
            f"run {review.run_id}): refusing to {verb} it"
        )
    value = value_for(verb, review_id)
    user = user or getpass.getuser()
    record = {"review_id": review_id, "verb": verb, "user": user, "via": via, "at": _now()}
    Variable.set(decided_by_variable(approval_variable), json.dumps(record), session=session)
    Variable.set(approval_variable, value, description=f"{verb} by {user} via {via}", session=session)
    note_on_run(
        dag_id,
        review.run_id,
        f"WAP review {review_id}: {verb} by {user} via {via} at {record['at']}",
        user_id=user_id,
        session=session,
    )
    return value


def note_on_run(dag_id: str, run_id: str, text: str, *, user_id: str | None, session: Session) -> None:
    """Put ``text`` in the run's note, where the Airflow UI shows it next to the run (replaces an older note)."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    if run is None:
        return
    if run.dag_run_note is None:
        run.note = (text, user_id)
    else:
        run.dag_run_note.content = text
        run.dag_run_note.user_id = user_id


def variable_value(approval_variable: str) -> str | None:
    from airflow.models.variable import Variable

    return Variable.get(approval_variable, default_var=None)


def describe(value: str | None, review: Review | None) -> str:
    """One line on what the approval Variable says about ``review``."""
    if review is None or review.review_id is None:
        try:
            return f"Variable says {parse(value)}" if value else "Variable not set"
        except InvalidDecision as error:
            return f"Variable holds an invalid value: {error}"
    return evaluate(value, review.review_id).reason


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
