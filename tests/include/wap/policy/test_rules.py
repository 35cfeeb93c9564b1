from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from wap.config import WapError
from wap.policy import rules
from wap.policy.rules import POLICY_FILE, Amount, Limit, PolicyError, RecentRange, load_policy, parse_policy

SOURCE = "dbt/wap_policy.yml"
EXAMPLE = """\
version: 1
rules:
  no_removed_relations: true
  no_removed_or_retyped_columns: true
  no_swap_safety_findings: true
  no_failed_or_warned_tests: true
  limits:
    - relations: "*"
      rows_removed: 0
      rows_changed: "1%"
    - relations: "stg_*"
      rows_changed: 100
  rows_added_in_recent_range:
    cycles: 5
    min_cycles: 3
    tolerance: "20%"
    relations: "*"
"""
EXAMPLE_NAMES = [
    "no_removed_relations",
    "no_removed_or_retyped_columns",
    "no_swap_safety_findings",
    "no_failed_or_warned_tests",
    "rows_removed <= 0 (*)",
    "rows_changed <= 1% (*)",
    "rows_changed <= 100 (stg_*)",
    "rows added in the range of the last 5 published cycles (±20%)",
]


def _error(text: str) -> str:
    with pytest.raises(PolicyError) as raised:
        parse_policy(textwrap.dedent(text), SOURCE)
    return str(raised.value)


def test_the_example_parses() -> None:
    policy = parse_policy(EXAMPLE, SOURCE)
    assert policy.source == SOURCE
    assert policy.no_removed_relations and policy.no_failed_or_warned_tests
    assert policy.limits == (
        Limit("*", rows_removed=Amount(count=0), rows_changed=Amount(percent=Decimal("1"))),
        Limit("stg_*", rows_changed=Amount(count=100)),
    )
    assert policy.rows_added_in_recent_range == RecentRange(5, 3, Amount(percent=Decimal("20")), "*")
    assert policy.rule_names() == EXAMPLE_NAMES


def test_the_docstring_example_parses_to_the_same_policy() -> None:
    doc = rules.__doc__ or ""
    block = doc[doc.index("    # wap_policy.yml") : doc.index("\nA limit and")]
    assert parse_policy(textwrap.dedent(block), SOURCE) == parse_policy(EXAMPLE, SOURCE)


def test_load_policy(tmp_path: Path) -> None:
    assert load_policy(tmp_path / POLICY_FILE) is None
    (tmp_path / POLICY_FILE).write_text(EXAMPLE)
    policy = load_policy(tmp_path / POLICY_FILE)
    assert policy is not None and policy.rule_names() == EXAMPLE_NAMES
    assert policy.source == str(tmp_path / POLICY_FILE)
    (tmp_path / POLICY_FILE).write_text("version: 2\n")
    with pytest.raises(PolicyError, match=rf"^{tmp_path / POLICY_FILE}: version: expected 1, got 2$"):
        load_policy(tmp_path / POLICY_FILE)


def test_rules_set_to_false_are_not_checked() -> None:
    policy = parse_policy(
        "version: 1\nrules:\n  no_removed_relations: false\n  no_swap_safety_findings: true\n"
        "  limits: false\n  rows_added_in_recent_range: false\n",
        SOURCE,
    )
    assert policy.rule_names() == ["no_swap_safety_findings"]
    assert not policy.no_removed_relations and policy.limits == () and policy.rows_added_in_recent_range is None


def test_defaults_and_names_of_the_range() -> None:
    policy = parse_policy("version: 1\nrules:\n  rows_added_in_recent_range: {}\n", SOURCE)
    assert policy.rows_added_in_recent_range == RecentRange(5, 5, Amount(count=0), "*")
    assert policy.rule_names() == ["rows added in the range of the last 5 published cycles"]
    text = "version: 1\nrules:\n  rows_added_in_recent_range: {cycles: 1, tolerance: 1000, relations: 'STG_*'}\n"
    assert parse_policy(text, SOURCE).rule_names() == [
        "rows added in the range of the last published cycle (±1,000 rows, STG_*)"
    ]


def test_percents() -> None:
    text = "version: 1\nrules:\n  limits: [{relations: a, rows_removed: '0.5%', rows_changed: 150 %}]\n"
    (limit,) = parse_policy(text, SOURCE).limits
    assert limit.rows_removed == Amount(percent=Decimal("0.5"))
    assert limit.rows_changed == Amount(percent=Decimal("150"))
    assert limit.rows_removed.rows_of(1000) == 5 and limit.rows_removed.rows_of(999) == 4
    assert limit.rows_removed.rows_of(None) == 0 and limit.rows_removed.rows_of(0) == 0
    assert Amount(count=7).rows_of(None) == 7


def test_policy_error_is_a_wap_error() -> None:
    assert issubclass(PolicyError, WapError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nrule: {}\n", "rule: unknown key; did you mean 'rules'?"),
        (
            "version: 1\nrules:\n  no_removed_relation: true\n",
            "rules.no_removed_relation: unknown key; did you mean 'no_removed_relations'?",
        ),
        (
            "version: 1\nrules:\n  limits:\n    - relations: '*'\n      rows_deleted: 0\n",
            "rules.limits[0].rows_deleted: unknown key; did you mean 'rows_removed'?",
        ),
        (
            "version: 1\nrules:\n  rows_added_in_recent_range: {cycles: 3, window: 2}\n",
            "rules.rows_added_in_recent_range.window: unknown key; expected one of cycles, min_cycles, tolerance, "
            "relations",
        ),
        ("version: 1\nrules:\n  no_removed_relations: 'yes'\n", "rules.no_removed_relations: expected true or false"),
        ("version: 1\nrules:\n  no_removed_relations: 1\n", "rules.no_removed_relations: expected true or false"),
        ("version: 1\nrules:\n  limits: {relations: '*'}\n", "rules.limits: expected a list of limits"),
        ("version: 1\nrules:\n  limits: [3]\n", "rules.limits[0]: expected a mapping, got a number (3)"),
        ("version: 1\nrules: [a]\n", "rules: expected a mapping, got a list"),
        (
            "version: 1\nrules:\n  limits:\n    - {relations: '*', rows_removed: 0}\n"
            "    - {relations: '*', rows_changed: lots}\n",
            "rules.limits[1].rows_changed: expected a count (a whole number >= 0) or a percent such as '0.5%', "
            "got 'lots'",
        ),
        ("version: 1\nrules:\n  limits: [{relations: '*', rows_removed: -1}]\n", "rules.limits[0].rows_removed"),
        ("version: 1\nrules:\n  limits: [{relations: '*', rows_removed: 0.5}]\n", "got 0.5"),
        ("version: 1\nrules:\n  limits: [{relations: '*', rows_removed: true}]\n", "got True"),
        ("version: 1\nrules:\n  limits: [{relations: '*', rows_removed: '-1%'}]\n", "got '-1%'"),
        ("version: 1\nrules:\n  limits: [{relations: '*', rows_changed: 'abc'}]\n", "got 'abc'"),
        ("version: 1\nrules:\n  limits: [{relations: '*', rows_changed: '%'}]\n", "got '%'"),
        (
            "version: 1\nrules:\n  limits: [{relations: '*'}]\n",
            "rules.limits[0]: a limit needs rows_removed or rows_changed (or both)",
        ),
        (
            "version: 1\nrules:\n  limits: [{rows_removed: 0}]\n",
            "rules.limits[0].relations: missing; give a relation name pattern such as '*' or 'stg_*'",
        ),
        ("version: 1\nrules:\n  limits: [{relations: 3, rows_removed: 0}]\n", "rules.limits[0].relations: expected"),
        ("version: 1\nrules:\n  limits: [{relations: '', rows_removed: 0}]\n", "rules.limits[0].relations: expected"),
        (
            "version: 1\nrules:\n  limits:\n    - {relations: a, rows_removed: 0}\n"
            "    - {relations: a, rows_removed: 0}\n",
            "rules.limits[1]: the rule 'rows_removed <= 0 (a)' is given twice",
        ),
        (
            "version: 1\nrules:\n  rows_added_in_recent_range: {cycles: 3, min_cycles: 4}\n",
            "rules.rows_added_in_recent_range.min_cycles: 4 is more than cycles (3)",
        ),
        (
            "version: 1\nrules:\n  rows_added_in_recent_range: {cycles: 0}\n",
            "rules.rows_added_in_recent_range.cycles: expected a whole number >= 1, got 0",
        ),
        (
            "version: 1\nrules:\n  rows_added_in_recent_range: {cycles: 3, min_cycles: 0}\n",
            "rules.rows_added_in_recent_range.min_cycles: expected a whole number >= 1, got 0",
        ),
        (
            "version: 1\nrules:\n  rows_added_in_recent_range: {tolerance: 'wide'}\n",
            "rules.rows_added_in_recent_range.tolerance: expected a count",
        ),
        ("version: 1\nrules:\n  rows_added_in_recent_range: true\n", "rules.rows_added_in_recent_range: expected"),
        ("rules:\n  no_removed_relations: true\n", "version: missing; the file starts with 'version: 1'"),
        ("version: 2\nrules:\n  no_removed_relations: true\n", "version: expected 1, got 2"),
        ("version: '1'\nrules:\n  no_removed_relations: true\n", "version: expected 1, got '1'"),
        ("version: true\nrules:\n  no_removed_relations: true\n", "version: expected 1, got True"),
        ("version: 1\nrules: {}\n", "rules: a policy with no rule would publish every cycle; remove the file"),
        ("version: 1\n", "rules: a policy with no rule would publish every cycle"),
        (
            "version: 1\nrules:\n  no_removed_relations: false\n  limits: []\n",
            "rules: a policy with no rule would publish every cycle",
        ),
        ("version: 1\nrules:\n  limits: [\n", "line 4, column 1: invalid YAML"),
        ("version: 1\nrules:\n  limits: *\n", "line 3, column 12: invalid YAML"),
        (
            "version: 1\nrules:\n  no_removed_relations: true\n  no_removed_relations: false\n",
            "line 4, column 3: invalid YAML: key 'no_removed_relations' given twice",
        ),
        ("- version: 1\n", "top level: expected a mapping with version and rules, got a list"),
        ("", "top level: expected a mapping with version and rules, got nothing"),
        ("just text", "top level: expected a mapping with version and rules, got a string"),
    ],
)
def test_bad_files_are_refused_naming_file_and_place(text: str, message: str) -> None:
    error = _error(text)
    assert error.startswith(f"{SOURCE}: ")
    assert message in error, error


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / POLICY_FILE
    path.write_bytes(b"version: 1\n\xff\xfe\n")
    with pytest.raises(PolicyError, match=rf"^{path}: cannot be read"):
        load_policy(path)
