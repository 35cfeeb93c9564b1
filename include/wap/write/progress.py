"""The progress of the one ``dbt build``, node by node, read from dbt's JSON log (``--log-format json``).

Pure: no Airflow, no warehouse. The producer task (:mod:`wap.write.watcher`) feeds every line of dbt's output to a
:class:`BuildProgress` and publishes its :meth:`~BuildProgress.snapshot` as one XCom; each unit's task decides its
state from that snapshot with :func:`unit_verdict`; the audit gets the test counts from :func:`dbt_test_rows`.

A snapshot is ``{"try_number", "done", "nodes": {unique_id: {"status", "message", "lines"}}}``: ``status`` is
``running`` from the node's first line (dbt's START line) until its result line gives dbt's own (``success``,
``pass``, ``warn``, ``error``, ``fail``, ``skipped``); ``message`` is dbt's error for a node that failed (its
``RunResultError`` line, which dbt prints in the summary at the end of the build); ``lines`` are the node's own
log lines (its START and result lines, its error).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: dbt node statuses: built or passed; failed; not run because something upstream failed.
OK_STATUSES = frozenset({"success", "pass", "warn"})
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})
SKIPPED_STATUSES = frozenset({"skipped"})
RUNNING = "running"
#: Lines kept per node (its START and result lines, and the error): enough for the task's log, bounded in XCom.
MAX_NODE_LINES = 12
MAX_LINE_CHARS = 2000
_LEVELS = {"debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40}


@dataclass(frozen=True)
class LogLine:
    """One line of dbt's JSON log: its level, human message and the node it is about (if any)."""

    level: str
    message: str
    unique_id: str | None = None
    event: str = ""
    status: str | None = None

    @property
    def is_info(self) -> bool:
        return _LEVELS.get(self.level, 20) >= 20


def parse_line(line: str) -> LogLine:
    """A line of dbt's output; a line that is not a JSON log record is an info line of its own text."""
    try:
        record = json.loads(line)
    except ValueError:
        return LogLine(level="info", message=line.rstrip())
    if not isinstance(record, dict):
        return LogLine(level="info", message=line.rstrip())
    info = record.get("info") or {}
    data = record.get("data") or {}
    node = data.get("node_info") or {}
    return LogLine(
        level=str(info.get("level") or "info").lower(),
        message=str(info.get("msg") or ""),
        unique_id=node.get("unique_id") or None,
        event=str(info.get("name") or ""),
        status=node.get("node_status") or None,
    )


@dataclass
class BuildProgress:
    """Every node's state so far in one try of the build. ``changed`` is set by each change, cleared by the reader."""

    try_number: int = 1
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    done: bool = False
    changed: bool = False

    def feed(self, raw: str) -> LogLine:
        """Take one line of dbt's output; returns it parsed (the caller logs its message)."""
        line = parse_line(raw)
        uid = line.unique_id
        if uid is None or not uid.startswith(("model.", "seed.", "snapshot.", "test.")):
            return line
        if uid not in self.nodes:
            self.changed = True
        node = self.nodes.setdefault(uid, {"status": RUNNING, "message": None, "lines": []})
        if line.status in OK_STATUSES | FAILED_STATUSES | SKIPPED_STATUSES and line.status != node["status"]:
            node["status"] = line.status
            self.changed = True
        if line.event == "RunResultError" and line.message.strip():
            node["message"] = " ".join(line.message.split())[:MAX_LINE_CHARS]
            self.changed = True
        if line.is_info and line.message.strip() and len(node["lines"]) < MAX_NODE_LINES:
            node["lines"].append(line.message.rstrip()[:MAX_LINE_CHARS])
        return line

    def finish(self) -> None:
        self.done = True
        self.changed = True

    def snapshot(self) -> dict[str, Any]:
        return {"try_number": self.try_number, "done": self.done, "nodes": self.nodes}

    def failures(self) -> list[tuple[str, str, str | None]]:
        """``(unique_id, status, message)`` of every node that failed, in the order dbt ran them."""
        return [
            (uid, node["status"], node.get("message"))
            for uid, node in self.nodes.items()
            if node["status"] in FAILED_STATUSES
        ]


def node_label(uid: str) -> tuple[str, str]:
    """``test.p.unique_orders_id.1a2b3c`` -> ``("test", "unique_orders_id")``; ``model.p.orders.v2`` -> ``("model",
    "orders")``: the resource type and the name dbt prints."""
    parts = uid.split(".")
    return parts[0], parts[2] if len(parts) > 2 else parts[-1]


def describe_failures(
    failures: Sequence[tuple[str, str, str | None]], owners: Mapping[str, str] | None = None, limit: int = 10
) -> str:
    """``model stg_orders (error: ...); test unique_stg_orders_order_id of stg_orders (fail: Got 1 result...)``:
    ``owners`` names the model (the unit) a failed test belongs to."""
    parts = []
    for uid, status, message in failures[:limit]:
        kind, name = node_label(uid)
        detail = f"{status}: {' '.join(message.split())}" if message else status
        owner = f" of {owners[uid]}" if owners and uid in owners else ""
        parts.append(f"{kind} {name}{owner} ({detail[:300]})")
    more = len(failures) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


#: The producer task's states, as Airflow names them, by what they mean to a unit.
PRODUCER_CURRENT = frozenset({"running", "success", "failed"})
PRODUCER_NEVER_RAN = frozenset({"upstream_failed", "skipped", "removed"})


@dataclass(frozen=True)
class Verdict:
    """What a unit's task does now: ``waiting`` (poll again), ``success`` or ``failed``, and why (for its log)."""

    state: str
    reason: str = ""


def unit_verdict(
    snapshot: Mapping[str, Any] | None,
    node_ids: Sequence[str],
    *,
    producer_state: str | None,
    producer_retries: int,
) -> Verdict:
    """The state of the unit made of ``node_ids`` (the node first, then its tests) in this snapshot.

    A snapshot counts only while the producer runs or once it has ended (its XCom is cleared when a new try starts,
    so a queued or retrying producer may still show the last try's). A failed node fails the unit only on the
    producer's last try (``try_number > producer_retries``) or once the producer has failed: before that, the
    retry will rebuild everything, and the unit waits for it.
    """
    if producer_state in PRODUCER_NEVER_RAN:
        return Verdict("failed", f"the build did not run (its task is {producer_state})")
    if producer_state not in PRODUCER_CURRENT or snapshot is None:
        return Verdict("waiting")
    nodes: Mapping[str, Any] = snapshot.get("nodes") or {}
    statuses = {uid: (nodes.get(uid) or {}).get("status") for uid in node_ids}
    bad = [uid for uid, status in statuses.items() if status in FAILED_STATUSES or status in SKIPPED_STATUSES]
    final = producer_state == "failed" or (
        producer_state == "running" and int(snapshot.get("try_number") or 1) > producer_retries
    )
    if bad:
        if not final and producer_state != "success":
            return Verdict("waiting")
        return Verdict("failed", "; ".join(_why(uid, nodes.get(uid) or {}) for uid in bad))
    if all(status in OK_STATUSES for status in statuses.values()):
        warned = [uid for uid, status in statuses.items() if status == "warn"]
        return Verdict("success", f"{len(warned)} test(s) warned" if warned else "")
    if producer_state == "failed":
        return Verdict("failed", "the build ended, failed, before dbt finished this node")
    if producer_state == "success":
        return Verdict("success", "dbt reported no result for part of this unit (nothing to run)")
    return Verdict("waiting")


def _why(uid: str, node: Mapping[str, Any]) -> str:
    (kind, name), status = node_label(uid), node.get("status")
    if status in SKIPPED_STATUSES:
        return f"{kind} {name}: skipped by dbt, as something it depends on failed"
    message = node.get("message")
    return f"{kind} {name}: {status}" + (f" ({' '.join(str(message).split())})" if message else "")


def dbt_test_rows(snapshot: Mapping[str, Any], units: Iterable[tuple[str, Sequence[str]]]) -> list[dict[str, Any]]:
    """The report's test counts ``{model, passed, failed, warned}`` per unit ``(label, node ids)`` that has tests,
    sorted by label: the same rows per-model mode collects from its test tasks."""
    nodes: Mapping[str, Any] = snapshot.get("nodes") or {}
    outcome = {"pass": "passed", "fail": "failed", "error": "failed", "warn": "warned"}
    rows = []
    for label, node_ids in units:
        counts = {"passed": 0, "failed": 0, "warned": 0}
        for uid in node_ids:
            status = (nodes.get(uid) or {}).get("status")
            if uid.startswith("test.") and status in outcome:
                counts[outcome[status]] += 1
        if any(counts.values()):
            rows.append({"model": label, **counts})
    return sorted(rows, key=lambda row: row["model"])
