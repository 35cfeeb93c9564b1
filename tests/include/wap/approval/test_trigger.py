"""ApprovalTrigger: serializes for the triggerer, fires only on this review's decision or at the deadline."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

import pytest

from wap.approval import trigger as triggers
from wap.approval.trigger import ApprovalTrigger

THIS = "0123456789ab"
OTHER = "ba9876543210"
VARIABLE = "wap_approval__wap_dwh"


def deadline(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


def make(seconds: float = 60, poke_interval: float = 0.01) -> ApprovalTrigger:
    return ApprovalTrigger(variable=VARIABLE, review_id=THIS, deadline=deadline(seconds), poke_interval=poke_interval)


def values(monkeypatch: pytest.MonkeyPatch, sequence: Iterable[str | Exception | None]) -> list[str]:
    """The Variable takes these values, one per read (the last one stays); returns the keys read."""
    items, reads = list(sequence), []

    async def read(key: str) -> str | None:
        reads.append(key)
        item = items.pop(0) if len(items) > 1 else items[0]
        if isinstance(item, Exception):
            raise item
        return item

    monkeypatch.setattr(triggers, "_read_variable", read)
    return reads


def first_event(trigger: ApprovalTrigger, timeout: float = 10) -> dict:
    async def run() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(run(), timeout))


def test_serialize_round_trip_through_the_class_path() -> None:
    trigger = make(poke_interval=7)
    classpath, kwargs = trigger.serialize()
    assert classpath == "wap.approval.trigger.ApprovalTrigger"  # importable by the triggerer, not from dags/
    module, _, name = classpath.rpartition(".")
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    assert kwargs == {"variable": VARIABLE, "review_id": THIS, "deadline": trigger.deadline, "poke_interval": 7.0}


def test_approval_of_this_review_after_noise(monkeypatch: pytest.MonkeyPatch, capfd) -> None:
    noise = [None, f"pending {THIS}", "approve", "lgtm", f"approve {OTHER}", f"reject {OTHER}"]
    reads = values(monkeypatch, [*noise, f"approve {THIS}"])
    trigger = make()
    event = first_event(trigger)
    assert event == {
        "outcome": "approved",
        "review_id": THIS,
        "reason": f"review {THIS} approved",
        "value": f"approve {THIS}",
        "deadline": trigger.deadline,
    }
    assert reads == [VARIABLE] * 7
    logged = "".join(capfd.readouterr())  # each distinct reason once (Airflow logs through structlog)
    assert logged.count(f"names review {OTHER}") == 2 and logged.count("names no review id") == 1


def test_reject(monkeypatch: pytest.MonkeyPatch) -> None:
    values(monkeypatch, [f"pending {THIS}", f"REJECT {THIS}"])
    event = first_event(make())
    assert event["outcome"] == "rejected"
    assert event["value"] == f"REJECT {THIS}"


@pytest.mark.parametrize("value", [f"pending {THIS}", f"approve {OTHER}", "approve", None])
def test_timeout_is_its_own_outcome_never_an_approval(monkeypatch: pytest.MonkeyPatch, value) -> None:
    values(monkeypatch, [value])
    event = first_event(make(seconds=0.2))
    assert event["outcome"] == "timeout"
    assert event["value"] is None
    assert "timed out" in event["reason"]


def test_a_decision_read_at_the_deadline_still_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    values(monkeypatch, [f"approve {THIS}"])
    assert first_event(make(seconds=-1))["outcome"] == "approved"


def test_an_unreadable_variable_is_waited_out(monkeypatch: pytest.MonkeyPatch, capfd) -> None:
    values(monkeypatch, [RuntimeError("metadata database is down"), f"reject {THIS}"])
    assert first_event(make())["outcome"] == "rejected"
    assert "cannot read Variable wap_approval__wap_dwh: metadata database is down" in "".join(capfd.readouterr())


def test_it_reads_through_the_task_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unpatched, the trigger reads the real Variable (here from the environment, one of Airflow's backends)."""
    monkeypatch.setenv(f"AIRFLOW_VAR_{VARIABLE.upper()}", f"approve {THIS}")
    assert first_event(make())["outcome"] == "approved"
