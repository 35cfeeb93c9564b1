from __future__ import annotations

import json
from typing import Any

import pytest

from wap.policy.evaluate import FIGURES, evaluate, recent_range, recent_ranges, rule_lines
from wap.policy.rules import Policy, parse_policy

EVERY_RULE = """\
version: 1
rules:
  no_removed_relations: true
  no_removed_or_retyped_columns: true
  no_swap_safety_findings: true
  no_failed_or_warned_tests: true
  limits:
    - {relations: "*", rows_removed: 0, rows_changed: "1%"}
    - {relations: "stg_*", rows_changed: 100}
  rows_added_in_recent_range: {cycles: 5, min_cycles: 3, tolerance: "20%"}
"""


def _policy(rules: str) -> Policy:
    return parse_policy(f"version: 1\nrules:\n{rules}", "dbt/wap_policy.yml")


def _rel(
    name: str, status: str = "changed", before: int | None = 1000, columns: Any = None, **rows: Any
) -> dict[str, Any]:
    figures = {"before": before, "after": before, "added": 0, "removed": 0, "changed": 0, **rows}
    return {"name": name, "status": status, "rows": figures, "columns": columns or {}}


def _report(*relations: dict[str, Any], dbt_tests: Any = (), swap_safety: Any = ()) -> dict[str, Any]:
    return {"summary": {}, "relations": list(relations), "dbt_tests": list(dbt_tests), "swap_safety": list(swap_safety)}


def _history(relation: str, *added: int, outcome: str = "published", day: int = 28) -> list[dict[str, Any]]:
    """One row per cycle, newest first: ``added[0]`` on ``day``, the next a day before, ..."""
    return [
        {
            "run_id": f"scheduled__2026-12-{day - i:02d}",
            "audited_at": f"2026-12-{day - i:02d}T10:00:00+00:00",
            "relation": relation,
            "outcome": outcome,
            "rows_before": 1000,
            "rows_after": 1000 + value,
            "rows_added": value,
            "rows_removed": 0,
            "rows_changed": 0,
        }
        for i, value in enumerate(added)
    ]


def _rule(verdict: dict[str, Any], name: str) -> dict[str, Any]:
    (entry,) = [rule for rule in verdict["rules"] if rule["rule"] == name]
    return entry


def _check(policy: Policy, report: dict[str, Any], history: list[dict[str, Any]] | None = None) -> tuple[bool, str]:
    """The one rule of ``policy``: whether it held, its detail."""
    verdict = evaluate(policy, report, history or [])
    (entry,) = verdict["rules"]
    assert verdict["publish"] is entry["held"]
    return entry["held"], entry["detail"]


# -- the verdict ------------------------------------------------------------------------------------------------
def test_every_rule_holding_publishes() -> None:
    policy = parse_policy(EVERY_RULE, "dbt/wap_policy.yml")
    report = _report(
        _rel("orders", added=9, changed=10),
        _rel("stg_orders", "unchanged", added=None, removed=None, changed=None),
        dbt_tests=[{"model": "orders", "passed": 3, "failed": 0, "warned": 0}],
    )
    history = _history("orders", 8, 9, 10) + _history("stg_orders", 0, 0, 0)
    verdict = evaluate(policy, report, history)
    assert verdict["publish"] is True
    assert verdict["source"] == "dbt/wap_policy.yml"
    assert [rule["rule"] for rule in verdict["rules"]] == policy.rule_names() == verdict["held"]
    assert verdict["failed"] == []
    assert all(rule["held"] for rule in verdict["rules"])
    assert json.loads(json.dumps(verdict)) == verdict


def test_one_failed_rule_sends_to_review() -> None:
    policy = parse_policy(EVERY_RULE, "dbt/wap_policy.yml")
    report = _report(_rel("orders", added=9, changed=11), _rel("old", "removed", removed=1000))
    verdict = evaluate(policy, report, _history("orders", 8, 9, 10))
    assert verdict["publish"] is False
    assert verdict["failed"] == ["no_removed_relations", "rows_changed <= 1% (*)"]
    assert set(verdict["held"]) == set(policy.rule_names()) - set(verdict["failed"])


def test_a_policy_of_no_rule_never_publishes() -> None:
    assert evaluate(Policy("p"), _report(), [])["publish"] is False


# -- the boolean rules -------------------------------------------------------------------------------------------
def test_no_removed_relations() -> None:
    policy = _policy("  no_removed_relations: true\n")
    assert _check(policy, _report(_rel("orders"), _rel("new", "added"))) == (True, "no relation removed")
    removed = [_rel(f"r{i}", "removed") for i in range(7)]
    assert _check(policy, _report(_rel("orders"), *removed)) == (
        False,
        "7 relations removed: r0, r1, r2, r3, r4, and 2 more",
    )


def test_no_removed_or_retyped_columns() -> None:
    policy = _policy("  no_removed_or_retyped_columns: true\n")
    added_only = _rel("orders", columns={"added": [{"name": "x", "type": "INTEGER"}]})
    assert _check(policy, _report(added_only, _rel("bare"))) == (True, "no column removed or retyped")
    changed = _rel(
        "orders",
        columns={
            "added": [],
            "removed": [{"name": "x", "type": "INTEGER"}, "z"],
            "type_changed": [{"name": "y", "before": "INTEGER", "after": "VARCHAR"}],
        },
    )
    retyped = _rel("customers", columns={"type_changed": [{"column": "id", "before": "INT", "after": "TEXT"}, "w"]})
    gone = _rel("gone", "removed", columns={"removed": ["a"]})  # a removed relation: no_removed_relations' concern
    held, detail = _check(policy, _report(changed, retyped, gone))
    assert not held
    assert detail == "orders: removed x, z; retyped y (INTEGER → VARCHAR); customers: retyped id (INT → TEXT), w"


def test_no_swap_safety_findings() -> None:
    policy = _policy("  no_swap_safety_findings: true\n")
    assert _check(policy, _report()) == (True, "no swap safety finding")
    finding = {"check": "dependent_view", "severity": "warn", "relation": "orders", "message": "v_orders depends"}
    assert _check(policy, _report(swap_safety=[finding])) == (False, "1 finding: orders: v_orders depends (warn)")


def test_no_failed_or_warned_tests() -> None:
    policy = _policy("  no_failed_or_warned_tests: true\n")
    assert _check(policy, _report()) == (True, "no dbt test in the report")
    passed = {"model": "orders", "passed": 1234, "failed": 0, "warned": 0}
    assert _check(policy, _report(dbt_tests=[passed])) == (True, "1,234 dbt tests passed")
    warned = {"model": "customers", "passed": 2, "failed": 0, "warned": 1}
    assert _check(policy, _report(dbt_tests=[passed, warned])) == (False, "customers: 0 failed, 1 warned")


# -- limits ------------------------------------------------------------------------------------------------------
def test_a_count_limit_is_inclusive() -> None:
    policy = _policy("  limits: [{relations: '*', rows_removed: 2}]\n")
    assert _check(policy, _report(_rel("orders", removed=2))) == (True, "1 relation within the limit")
    assert _check(policy, _report(_rel("orders", removed=3), _rel("customers", removed=1_234_567))) == (
        False,
        "orders: 3 rows removed (limit 2); customers: 1,234,567 rows removed (limit 2)",
    )


def test_a_zero_limit() -> None:
    policy = _policy("  limits: [{relations: '*', rows_removed: 0}]\n")
    assert _check(policy, _report(_rel("orders", removed=0)))[0]
    assert _check(policy, _report(_rel("orders", removed=1))) == (False, "orders: 1 row removed (limit 0)")


@pytest.mark.parametrize(("percent", "allowed"), [("1%", 10), ("0.5%", 5), ("0.15%", 1), ("150%", 1500), ("0%", 0)])
def test_a_percent_limit_of_1000_rows_before(percent: str, allowed: int) -> None:
    policy = _policy(f"  limits: [{{relations: '*', rows_changed: '{percent}'}}]\n")
    assert _check(policy, _report(_rel("orders", before=1000, changed=allowed)))[0]
    held, detail = _check(policy, _report(_rel("orders", before=1000, changed=allowed + 1)))
    assert not held
    rows = "1 row" if allowed == 0 else f"{allowed + 1:,} rows"
    assert detail == f"orders: {rows} changed (limit {percent} of 1,000 = {allowed:,})"


def test_a_percent_of_no_rows_before_allows_none() -> None:
    policy = _policy("  limits: [{relations: '*', rows_removed: '50%', rows_changed: '50%'}]\n")
    new = _rel("new", "added", before=None, after=10, added=10, removed=None, changed=None)
    assert evaluate(policy, _report(new), [])["publish"] is True
    verdict = evaluate(policy, _report(_rel("empty", before=0, changed=1)), [])
    assert verdict["failed"] == ["rows_changed <= 50% (*)"]
    assert _rule(verdict, "rows_changed <= 50% (*)")["detail"] == "empty: 1 row changed (limit 50% of 0 = 0)"


def test_patterns_are_case_insensitive_and_every_matching_limit_applies() -> None:
    policy = _policy(
        "  limits:\n    - {relations: '*', rows_changed: 100}\n    - {relations: 'STG_*', rows_changed: 5}\n"
    )
    verdict = evaluate(policy, _report(_rel("stg_Orders", changed=6), _rel("orders", changed=6)), [])
    assert verdict["failed"] == ["rows_changed <= 5 (STG_*)"]
    assert _rule(verdict, "rows_changed <= 5 (STG_*)")["detail"] == "stg_Orders: 6 rows changed (limit 5)"
    assert _rule(verdict, "rows_changed <= 100 (*)")["detail"] == "2 relations within the limit"
    verdict = evaluate(policy, _report(_rel("stg_orders", changed=101)), [])
    assert verdict["failed"] == ["rows_changed <= 100 (*)", "rows_changed <= 5 (STG_*)"]


def test_limits_skip_removed_relations_and_unmatched_patterns() -> None:
    policy = _policy("  limits: [{relations: 'fct_*', rows_removed: 0}]\n")
    report = _report(_rel("fct_gone", "removed", after=None, removed=1000), _rel("orders", removed=5))
    assert _check(policy, report) == (True, "no relation matches 'fct_*'")


def test_limits_on_unknown_figures() -> None:
    policy = _policy("  limits: [{relations: '*', rows_changed: 10}]\n")
    unchanged = _rel("same", "unchanged", added=None, removed=None, changed=None)
    assert _check(policy, _report(unchanged))[0]
    assert _check(policy, _report(_rel("orders", changed=None))) == (False, "orders: rows changed not known")
    # A relation without a key is compared as a multiset: a changed row is a row removed and a row added.
    keyless = {**_rel("raw_orders", added=2, removed=1, changed=None), "diff_method": "multiset"}
    assert _check(policy, _report(keyless))[0]


def test_details_name_the_first_five() -> None:
    policy = _policy("  limits: [{relations: '*', rows_removed: 0}]\n")
    held, detail = _check(policy, _report(*[_rel(f"r{i}", removed=i + 1) for i in range(8)]))
    assert not held
    assert detail.startswith("r0: 1 row removed (limit 0); r1: 2 rows removed (limit 0); ")
    assert detail.endswith("r4: 5 rows removed (limit 0); and 3 more")


# -- the recent range --------------------------------------------------------------------------------------------
RANGE = "  rows_added_in_recent_range: {cycles: 5, min_cycles: 3, tolerance: '20%'}\n"


@pytest.mark.parametrize(("added", "held"), [(8, True), (7, False), (24, True), (25, False), (15, True)])
def test_the_range_widened_by_a_percent_is_inclusive(added: int, held: bool) -> None:
    result = _check(_policy(RANGE), _report(_rel("orders", added=added)), _history("orders", 10, 20, 15))
    assert result == (
        held,
        "1 relation within range" if held else f"orders: {added} rows added, range of 3 cycles 10-20 (allowed 8-24)",
    )


def test_the_range_rounds_a_fractional_edge_inward() -> None:
    history = _history("orders", 8, 9, 10)  # 8 * 0.8 = 6.4, 10 * 1.2 = 12
    assert not _check(_policy(RANGE), _report(_rel("orders", added=6)), history)[0]
    assert _check(_policy(RANGE), _report(_rel("orders", added=7)), history)[0]
    assert (
        _check(_policy(RANGE), _report(_rel("orders", added=13)), history)[1]
        == "orders: 13 rows added, range of 3 cycles 8-10 (allowed 7-12)"
    )


@pytest.mark.parametrize(("added", "held"), [(5, True), (4, False), (25, True), (26, False)])
def test_the_range_widened_by_a_count(added: int, held: bool) -> None:
    policy = _policy("  rows_added_in_recent_range: {cycles: 3, tolerance: 5}\n")
    assert _check(policy, _report(_rel("orders", added=added)), _history("orders", 10, 20, 15))[0] is held


@pytest.mark.parametrize(("added", "held"), [(1000, True), (999, False), (2000, True), (2001, False)])
def test_the_range_without_tolerance(added: int, held: bool) -> None:
    policy = _policy("  rows_added_in_recent_range: {cycles: 2}\n")
    result = _check(policy, _report(_rel("orders", added=added)), _history("orders", 1000, 2000))
    assert result[0] is held
    if not held:
        assert result[1] == f"orders: {added:,} rows added, range of 2 cycles 1,000-2,000 (allowed 1,000-2,000)"


def test_the_range_needs_min_cycles_of_history() -> None:
    report = _report(_rel("orders", added=10))
    assert _check(_policy(RANGE), report, _history("orders", 10, 10)) == (
        False,
        "orders: 2 published cycles of history (needs 3)",
    )
    assert _check(_policy(RANGE), report, []) == (False, "orders: 0 published cycles of history (needs 3)")
    assert _check(_policy(RANGE), report, _history("orders", 10, 10, 10))[0]


def test_the_range_takes_the_newest_cycles_only() -> None:
    history = _history("orders", 10, 10, 10, 10, 10, 500)  # the sixth, oldest, is out of the window of 5
    for given in (history, list(reversed(history))):  # newest by audited_at, whatever the order given
        assert _check(_policy(RANGE), _report(_rel("orders", added=400)), given) == (
            False,
            "orders: 400 rows added, range of 5 cycles 10-10 (allowed 8-12)",
        )


def test_the_range_ignores_cycles_not_published() -> None:
    history = _history("orders", 10, 10, 10) + _history("orders", 500, 500, outcome="rejected", day=20)
    history += _history("orders", 500, outcome="review", day=29)
    assert not _check(_policy(RANGE), _report(_rel("orders", added=500)), history)[0]
    assert not _check(_policy(RANGE), _report(_rel("orders", added=10)), history[3:])[0]  # too few published


def test_a_new_relation_has_no_history() -> None:
    new = _rel("new", "added", before=None, added=10, removed=None, changed=None)
    assert _check(_policy(RANGE), _report(new), _history("new", 10, 10, 10)) == (
        False,
        "new: a new relation, no published history",
    )


def test_the_range_skips_removed_relations_and_matches_history_case_insensitively() -> None:
    policy = _policy("  rows_added_in_recent_range: {cycles: 3, relations: 'FCT_*'}\n")
    report = _report(_rel("fct_orders", added=10), _rel("fct_gone", "removed"), _rel("orders", added=1))
    assert _check(policy, report, _history("FCT_ORDERS", 10, 10, 10)) == (True, "1 relation within range")


def test_the_range_on_unknown_rows_added() -> None:
    unchanged = _rel("same", "unchanged", added=None, removed=None, changed=None)
    assert _check(_policy(RANGE), _report(unchanged), _history("same", 0, 0, 0))[0]
    assert _check(_policy(RANGE), _report(_rel("orders", added=None)), _history("orders", 1, 1, 1)) == (
        False,
        "orders: rows added not known",
    )


def test_the_cycle_that_created_a_relation_is_not_history() -> None:
    history = _history("orders", 10, 10, 10, 50_000)
    history[-1]["rows_before"] = None  # its first cycle added its whole content
    assert not _check(_policy(RANGE), _report(_rel("orders", added=40_000)), history)[0]


# -- recent_range ------------------------------------------------------------------------------------------------
def test_recent_range() -> None:
    history = _history("orders", 7, 3, 9, 1) + _history("customers", 100)
    assert recent_range(history, "ORDERS", "rows_added", 3) == (3, 9, 3)
    assert recent_range(history, "orders", "rows_added", 10) == (1, 9, 4)
    assert recent_range(list(reversed(history)), "orders", "rows_added", 1) == (7, 7, 1)
    assert recent_range(history, "orders", "rows_removed", 2) == (0, 0, 2)
    assert recent_range(history, "nothing", "rows_added", 3) is None
    assert recent_range(history + _history("orders", 1000), "orders", "rows_added", 1) == (7, 7, 1)  # one run, once
    history[0]["rows_added"] = None  # a figure not known: the cycle is left out
    assert recent_range(history, "orders", "rows_added", 3) == (1, 9, 3)
    with pytest.raises(ValueError, match="figure must be one of"):
        recent_range(history, "orders", "rows_after", 3)


def test_recent_ranges_are_recent_range_of_every_relation_and_figure() -> None:
    history = _history("orders", 10, 12, 9) + _history("Customers", 0, 3)
    ranges = recent_ranges(history, 2)
    assert set(ranges) == {"orders", "customers"}
    for relation in ("orders", "customers"):
        for figure in FIGURES:
            assert ranges[relation].get(figure) == recent_range(history, relation, figure, 2)


def test_rule_lines_say_held_or_failed_with_the_figures() -> None:
    verdict = {"rules": [{"rule": "a", "held": True, "detail": "fine"}, {"rule": "b", "held": False, "detail": "12 x"}]}
    assert rule_lines(verdict) == ["held: a: fine", "FAILED: b: 12 x"]
    assert rule_lines({"rules": []}) == rule_lines({}) == []
