"""A cycle's audit report (and the history of earlier cycles) against a :class:`~wap.policy.rules.Policy`.

The verdict is a dict of JSON types::

    publish  True when every rule held (the cycle may publish without a reviewer), else False (review);
             False too for a policy that checks no rule (the file refuses one)
    source   the policy's file
    rules    [{rule, held, detail}], one per rule the policy checks, in Policy.rule_names() order; the detail
             names the relations and figures (the first 5, then "and N more")
    failed, held   the names of the rules that failed, that held

The history is a list of dicts, one per relation per earlier cycle (run_id, audited_at, relation, outcome,
rows_before, rows_after, rows_added, rows_removed, rows_changed); only outcome "published" counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from fractions import Fraction
from typing import Any

from wap.policy.rules import Amount, Policy, RecentRange

FIGURES = ("rows_added", "rows_removed", "rows_changed")
MAX_NAMED = 5
MAX_MESSAGE = 160
_Result = tuple[bool, str]


def _rows(count: int, what: str) -> str:
    return f"{count:,} row{'' if count == 1 else 's'} {what}"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _listed(items: Sequence[str], separator: str = "; ") -> str:
    """The first :data:`MAX_NAMED` of ``items``, then "and N more"."""
    shown = list(items[:MAX_NAMED]) + ([f"and {len(items) - MAX_NAMED} more"] if len(items) > MAX_NAMED else [])
    return separator.join(shown)


def _matches(name: str, pattern: str) -> bool:
    return fnmatchcase(name.lower(), pattern.lower())


def _present(report: Mapping[str, Any], pattern: str = "*") -> list[Mapping[str, Any]]:
    """The report's relations matching ``pattern`` (case-insensitive) but those removed from production."""
    relations = report.get("relations") or []
    return [e for e in relations if e.get("status") != "removed" and _matches(str(e.get("name")), pattern)]


def _none(pattern: str) -> str:
    return f"no relation matches {pattern!r}"


def _figure(entry: Mapping[str, Any], figure: str) -> int | None:
    """A relation's ``rows_added`` / ``rows_removed`` / ``rows_changed``; 0 where nothing can have happened (an
    unchanged relation; rows removed or changed of a new one; rows changed of a relation compared as a multiset of
    rows, where a changed row is a row removed and a row added), None where it is not known."""
    value = (entry.get("rows") or {}).get(figure.removeprefix("rows_"))
    status = entry.get("status")
    if value is None and (status == "unchanged" or (status == "added" and figure != "rows_added")):
        return 0
    if value is None and figure == "rows_changed" and entry.get("diff_method") == "multiset":
        return 0
    return None if value is None else int(value)


# -- history ------------------------------------------------------------------------------------------------------
def _when(row: Mapping[str, Any]) -> datetime:
    value = row.get("audited_at")
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _published(history: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """The published rows of ``history`` by relation (lower case), newest first; rows of a cycle in which the
    relation was new (rows_before None) are left out: what it added then was its whole content."""
    by_relation: dict[str, list[Mapping[str, Any]]] = {}
    for row in sorted(history, key=_when, reverse=True):
        if row.get("outcome") == "published" and row.get("rows_before") is not None:
            by_relation.setdefault(str(row.get("relation")).lower(), []).append(row)
    return by_relation


def _window(rows: Iterable[Mapping[str, Any]], figure: str, cycles: int) -> tuple[int, int, int] | None:
    seen: set[Any] = set()
    values: list[int] = []
    for row in rows:
        if len(values) >= cycles:
            break
        if row.get(figure) is not None and row.get("run_id") not in seen:
            seen.add(row.get("run_id"))
            values.append(int(row[figure]))
    return (min(values), max(values), len(values)) if values else None


def recent_range(
    history: Iterable[Mapping[str, Any]], relation: str, figure: str, cycles: int
) -> tuple[int, int, int] | None:
    """``(min, max, number of cycles)`` of ``figure`` for ``relation`` (by name, case-insensitive) over its newest
    ``cycles`` published cycles, or None without any. Cycles in which the relation was new (rows_before None) or
    whose figure is not known are left out."""
    if figure not in FIGURES:
        raise ValueError(f"figure must be one of {', '.join(FIGURES)}, got {figure!r}")
    return _window(_published(history).get(relation.lower(), []), figure, cycles)


def recent_ranges(history: Iterable[Mapping[str, Any]], cycles: int) -> dict[str, dict[str, tuple[int, int, int]]]:
    """:func:`recent_range` of every relation (lower case) and figure of ``history``, grouping it once: for a report
    of hundreds of relations, where a call per relation and figure would sort the history each time."""
    return {
        relation: {figure: window for figure in FIGURES if (window := _window(rows, figure, cycles)) is not None}
        for relation, rows in _published(history).items()
    }


def _widened(low: int, high: int, tolerance: Amount) -> tuple[int, int]:
    """The whole numbers of rows allowed: ``[low, high]`` widened by a count, or by a share of each end."""
    if tolerance.percent is None:
        return max(0, low - (tolerance.count or 0)), high + (tolerance.count or 0)
    share = Fraction(tolerance.percent) / 100
    return max(0, math.ceil(low * (1 - share))), math.floor(high * (1 + share))


# -- the rules ----------------------------------------------------------------------------------------------------
def _no_removed_relations(report: Mapping[str, Any]) -> _Result:
    removed = [str(e.get("name")) for e in report.get("relations") or [] if e.get("status") == "removed"]
    if not removed:
        return True, "no relation removed"
    return False, f"{_plural(len(removed), 'relation')} removed: {_listed(removed, ', ')}"


def _column(item: Any) -> str:
    if not isinstance(item, Mapping):
        return str(item)
    name = item.get("name") or item.get("column")
    return f"{name} ({item['before']} → {item['after']})" if "before" in item and "after" in item else str(name)


def _no_removed_or_retyped_columns(report: Mapping[str, Any]) -> _Result:
    found = []
    for entry in _present(report):
        columns = entry.get("columns") or {}
        parts = [
            f"{label} {', '.join(_column(item) for item in columns.get(key) or [])}"
            for key, label in (("removed", "removed"), ("type_changed", "retyped"))
            if columns.get(key)
        ]
        if parts:
            found.append(f"{entry.get('name')}: {'; '.join(parts)}")
    return (False, _listed(found)) if found else (True, "no column removed or retyped")


def _no_swap_safety_findings(report: Mapping[str, Any]) -> _Result:
    findings = report.get("swap_safety") or []
    if not findings:
        return True, "no swap safety finding"
    lines = []
    for finding in findings:
        message = str(finding.get("message") or finding.get("check"))
        message = message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"
        lines.append(f"{finding.get('relation') or finding.get('check')}: {message} ({finding.get('severity')})")
    return False, f"{_plural(len(findings), 'finding')}: {_listed(lines)}"


def _no_failed_or_warned_tests(report: Mapping[str, Any]) -> _Result:
    tests = report.get("dbt_tests") or []
    bad = []
    for test in tests:
        failed, warned = int(test.get("failed") or 0), int(test.get("warned") or 0)
        if failed or warned:
            bad.append(f"{test.get('model') or test.get('name')}: {failed:,} failed, {warned:,} warned")
    if bad:
        return False, _listed(bad)
    passed = sum(int(test.get("passed") or 0) for test in tests)
    return True, f"{_plural(passed, 'dbt test')} passed" if tests else "no dbt test in the report"


def _limit(report: Mapping[str, Any], pattern: str, figure: str, amount: Amount) -> _Result:
    checked = _present(report, pattern)
    what = figure.removeprefix("rows_")
    over = []
    for entry in checked:
        value, before = _figure(entry, figure), (entry.get("rows") or {}).get("before")
        allowed = amount.rows_of(before)
        if value is None:
            over.append(f"{entry.get('name')}: rows {what} not known")
        elif value > allowed:
            limit = f"{allowed:,}" if amount.percent is None else f"{amount} of {before or 0:,} = {allowed:,}"
            over.append(f"{entry.get('name')}: {_rows(value, what)} (limit {limit})")
    if over:
        return False, _listed(over)
    return True, f"{_plural(len(checked), 'relation')} within the limit" if checked else _none(pattern)


def _in_recent_range(report: Mapping[str, Any], rule: RecentRange, history: Sequence[Mapping[str, Any]]) -> _Result:
    checked = _present(report, rule.relations)
    published = _published(history)
    out = []
    for entry in checked:
        name, value = str(entry.get("name")), _figure(entry, "rows_added")
        window = _window(published.get(name.lower(), []), "rows_added", rule.cycles)
        cycles = window[2] if window else 0
        if entry.get("status") == "added":
            out.append(f"{name}: a new relation, no published history")
        elif value is None:
            out.append(f"{name}: rows added not known")
        elif window is None or cycles < rule.min_cycles:
            out.append(f"{name}: {_plural(cycles, 'published cycle')} of history (needs {rule.min_cycles})")
        else:
            low, high = _widened(window[0], window[1], rule.tolerance)
            if not low <= value <= high:
                out.append(
                    f"{name}: {_rows(value, 'added')}, range of {_plural(cycles, 'cycle')} {window[0]:,}-{window[1]:,}"
                    f" (allowed {low:,}-{high:,})"
                )
    if out:
        return False, _listed(out)
    return True, f"{_plural(len(checked), 'relation')} within range" if checked else _none(rule.relations)


def evaluate(policy: Policy, report: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The verdict of ``policy`` on ``report`` given the ``history`` of earlier cycles (see the module docstring)."""
    checks = {
        "no_removed_relations": _no_removed_relations,
        "no_removed_or_retyped_columns": _no_removed_or_retyped_columns,
        "no_swap_safety_findings": _no_swap_safety_findings,
        "no_failed_or_warned_tests": _no_failed_or_warned_tests,
    }
    results = [(name, *check(report)) for name, check in checks.items() if getattr(policy, name)]
    for limit in policy.limits:
        results += [(name, *_limit(report, limit.relations, figure, amount)) for name, figure, amount in limit.rules()]
    if policy.rows_added_in_recent_range:
        rule = policy.rows_added_in_recent_range
        results.append((rule.rule_name(), *_in_recent_range(report, rule, history)))
    return {
        "publish": bool(results) and all(held for _, held, _ in results),
        "source": policy.source,
        "rules": [{"rule": name, "held": held, "detail": detail} for name, held, detail in results],
        "failed": [name for name, held, _ in results if not held],
        "held": [name for name, held, _ in results if held],
    }


def rule_lines(verdict: Mapping[str, Any]) -> list[str]:
    """Each rule of a verdict (:func:`evaluate`) as ``held|FAILED: <rule>: <figures>`` (`wap cycle`, `wap status`)."""
    return [
        f"{'held' if rule['held'] else 'FAILED'}: {rule['rule']}: {rule['detail']}"
        for rule in verdict.get("rules") or []
    ]
