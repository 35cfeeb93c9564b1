"""The review policy a team writes in its dbt project (``wap_policy.yml``): parsed and validated, immutable.

When every rule of the policy holds for a cycle's audit report, the cycle publishes without a reviewer; when one
fails, a person reviews as usual. A policy never rejects. Without the file every cycle is reviewed. A complete
example, version 1 (every key optional except ``version``; a rule left out or set to ``false`` is not checked,
and a file with no rule at all is refused)::

    # wap_policy.yml: a cycle whose every rule holds publishes without a reviewer
    version: 1
    rules:
      no_removed_relations: true          # no relation of production is missing from the build
      no_removed_or_retyped_columns: true # no column of a relation removed or its type changed
      no_swap_safety_findings: true       # the report's swap_safety list is empty (block and warn alike)
      no_failed_or_warned_tests: true     # every dbt test passed (warn-severity tests count as not passed)
      limits:                             # per relation, by name pattern (fnmatch, case-insensitive);
        - relations: "*"                  #   every matching entry applies; quote patterns (a bare * is YAML syntax)
          rows_removed: 0                 # a count (whole number >= 0) or a percent of the rows before: "0.5%"
          rows_changed: "1%"              #   (a percent of a relation with no rows before allows 0 rows)
        - relations: "stg_*"
          rows_changed: 100
      rows_added_in_recent_range:         # rows added per relation within the range of the last N published cycles
        cycles: 5                         # N, the window (whole number >= 1; default 5)
        min_cycles: 3                     # fewer published cycles of history for a relation: the rule fails
                                          #   (1 <= min_cycles <= cycles; default: cycles)
        tolerance: "20%"                  # widens the range [min, max]: low = min*(1-t), high = max*(1+t); or a
                                          #   count of rows, low = min-N, high = max+N (default 0)
        relations: "*"                    # optional pattern (default "*")

A limit and the range are inclusive. A key given twice is refused. Relations removed from production are not
checked by the limits nor the range; a new relation fails the range (it has no history). A cycle in which a
relation was new (``rows_before`` None) and cycles whose figure is unknown are not part of its history.

The names of the rules (:meth:`Policy.rule_names`, in this order; verdicts name failed rules by them):
``no_removed_relations``, ``no_removed_or_retyped_columns``, ``no_swap_safety_findings``,
``no_failed_or_warned_tests``; one per limit and figure, in file order, removed before changed:
``rows_removed <= 0 (*)``, ``rows_changed <= 1% (*)``, ``rows_changed <= 100 (stg_*)``; and the range:
``rows added in the range of the last 5 published cycles (±20%)`` (the tolerance shown when not 0, as ``±20%``
or ``±10 rows``; the pattern when not ``*``: ``(±20%, stg_*)``). Two rules of the same name are refused.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from wap.config import PROJECT_DIR, WapError

POLICY_FILE = "wap_policy.yml"
BOOLEAN_RULES = (
    "no_removed_relations",
    "no_removed_or_retyped_columns",
    "no_swap_safety_findings",
    "no_failed_or_warned_tests",
)
RULES = (*BOOLEAN_RULES, "limits", "rows_added_in_recent_range")
LIMIT_FIGURES = ("rows_removed", "rows_changed")
_RANGE_KEYS = ("cycles", "min_cycles", "tolerance", "relations")
_PERCENT = re.compile(r"\A\s*(\d+(?:\.\d+)?|\.\d+)\s*%\s*\Z")
_NO_RULE = "remove the file to review every cycle"
_AMOUNT = "a count (a whole number >= 0) or a percent such as '0.5%'"


class PolicyError(WapError, ValueError):
    """The policy file cannot be used; the message names the file and the place in it."""


class _Invalid(Exception):
    """A problem at a place of the file (the file's name is added by :func:`parse_policy`)."""

    def __init__(self, place: str, problem: str) -> None:
        super().__init__(f"{place}: {problem}")


@dataclass(frozen=True)
class Amount:
    """A number of rows: a ``count``, or a ``percent`` of a base (exactly one is set)."""

    count: int | None = None
    percent: Decimal | None = None

    def __str__(self) -> str:
        return f"{self.percent}%" if self.percent is not None else f"{self.count:,}"

    @property
    def is_zero(self) -> bool:
        return not (self.count or self.percent)

    def rows_of(self, base: int | None) -> int:
        """The most whole rows this allows out of ``base`` rows (a percent of no rows allows 0)."""
        if self.percent is None:
            return self.count or 0
        return math.floor(Fraction(self.percent) * (base or 0) / 100)


@dataclass(frozen=True)
class Limit:
    """The most rows removed and/or changed that a relation matching ``relations`` may have in a cycle."""

    relations: str
    rows_removed: Amount | None = None
    rows_changed: Amount | None = None

    def rules(self) -> list[tuple[str, str, Amount]]:
        """``(rule name, figure, amount)`` of each figure this limits, removed before changed."""
        figures = [(figure, getattr(self, figure)) for figure in LIMIT_FIGURES]
        return [
            (f"{figure} <= {amount} ({self.relations})", figure, amount)
            for figure, amount in figures
            if amount is not None
        ]


@dataclass(frozen=True)
class RecentRange:
    """Rows added per relation within the range of its last ``cycles`` published cycles, widened by ``tolerance``."""

    cycles: int
    min_cycles: int
    tolerance: Amount = Amount(count=0)
    relations: str = "*"

    def rule_name(self) -> str:
        window = "the last published cycle" if self.cycles == 1 else f"the last {self.cycles} published cycles"
        unit = "" if self.tolerance.percent is not None else " rows"
        extra = [] if self.tolerance.is_zero else [f"±{self.tolerance}{unit}"]
        extra += [] if self.relations == "*" else [self.relations]
        return f"rows added in the range of {window}" + (f" ({', '.join(extra)})" if extra else "")


@dataclass(frozen=True)
class Policy:
    """A validated policy; ``source`` names its file in messages and verdicts."""

    source: str
    no_removed_relations: bool = False
    no_removed_or_retyped_columns: bool = False
    no_swap_safety_findings: bool = False
    no_failed_or_warned_tests: bool = False
    limits: tuple[Limit, ...] = ()
    rows_added_in_recent_range: RecentRange | None = None

    def rule_names(self) -> list[str]:
        """The names of the rules this policy checks, in the order of its verdicts (see the module docstring)."""
        names = [name for name in BOOLEAN_RULES if getattr(self, name)]
        names += [name for limit in self.limits for name, _, _ in limit.rules()]
        if self.rows_added_in_recent_range:
            names.append(self.rows_added_in_recent_range.rule_name())
        return names


# -- reading ------------------------------------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in a mapping (YAML would keep the last silently)."""


def _no_duplicates(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, Hashable):
            continue  # construct_mapping says so
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _type(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}.get(
        type(value), "a mapping" if isinstance(value, Mapping) else "nothing" if value is None else type(value).__name__
    )


def _mapping(value: Any, place: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
    """``value`` as a mapping of only ``keys``, or :class:`_Invalid` naming the first unknown key."""
    if not isinstance(value, Mapping):
        raise _Invalid(place, f"expected a mapping, got {_type(value)} ({value!r})")
    for key in value:
        if key not in keys:
            close = difflib.get_close_matches(str(key), keys, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of {', '.join(keys)}"
            raise _Invalid(f"{place}.{key}" if place else str(key), f"unknown key{hint}")
    return value


def _unless_off(value: Any, off: Any) -> Any:
    """``off`` for a rule left empty or set to ``false``, else ``value`` (validated by the caller)."""
    return off if value is None or value is False else value


def _whole(value: Any, place: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise _Invalid(place, f"expected a whole number >= {least}, got {value!r}")
    return value


def _amount(value: Any, place: str) -> Amount:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return Amount(count=value)
    match = _PERCENT.match(value) if isinstance(value, str) else None
    if not match:
        raise _Invalid(place, f"expected {_AMOUNT}, got {value!r}")
    return Amount(percent=Decimal(match.group(1)))


def _pattern(entry: Mapping[str, Any], place: str, default: str | None = None) -> str:
    value = entry.get("relations", default)
    if value is None:
        raise _Invalid(f"{place}.relations", "missing; give a relation name pattern such as '*' or 'stg_*'")
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"{place}.relations", f"expected a relation name pattern such as 'stg_*', got {value!r}")
    return value.strip()


def _limit(value: Any, place: str) -> Limit:
    entry = _mapping(value, place, ("relations", *LIMIT_FIGURES))
    amounts = {figure: _amount(entry[figure], f"{place}.{figure}") for figure in LIMIT_FIGURES if figure in entry}
    if not amounts:
        raise _Invalid(place, "a limit needs rows_removed or rows_changed (or both)")
    return Limit(_pattern(entry, place), **amounts)


def _recent_range(value: Any, place: str) -> RecentRange:
    entry = _mapping(value, place, _RANGE_KEYS)
    cycles = _whole(entry.get("cycles", 5), f"{place}.cycles", 1)
    min_cycles = _whole(entry.get("min_cycles", cycles), f"{place}.min_cycles", 1)
    if min_cycles > cycles:
        raise _Invalid(f"{place}.min_cycles", f"{min_cycles} is more than cycles ({cycles})")
    tolerance = _amount(entry.get("tolerance", 0), f"{place}.tolerance")
    return RecentRange(cycles, min_cycles, tolerance, _pattern(entry, place, "*"))


def _policy(data: Any, source: str) -> Policy:
    if not isinstance(data, Mapping):
        raise _Invalid("top level", f"expected a mapping with version and rules, got {_type(data)}")
    _mapping(data, "", ("version", "rules"))
    if "version" not in data:
        raise _Invalid("version", "missing; the file starts with 'version: 1'")
    if type(data["version"]) is not int or data["version"] != 1:
        raise _Invalid("version", f"expected 1, got {data['version']!r}")
    rules = _mapping(_unless_off(data.get("rules"), {}), "rules", RULES)
    for name in BOOLEAN_RULES:
        if not isinstance(rules.get(name, False), bool):
            raise _Invalid(f"rules.{name}", f"expected true or false, got {rules[name]!r}")
    limits = _unless_off(rules.get("limits"), [])
    if not isinstance(limits, list):
        raise _Invalid("rules.limits", f"expected a list of limits (or false), got {_type(limits)}")
    recent = _unless_off(rules.get("rows_added_in_recent_range"), None)
    policy = Policy(
        source,
        **{name: rules.get(name, False) for name in BOOLEAN_RULES},
        limits=tuple(_limit(entry, f"rules.limits[{i}]") for i, entry in enumerate(limits)),
        rows_added_in_recent_range=None if recent is None else _recent_range(recent, f"rules.{RULES[-1]}"),
    )
    if not policy.rule_names():
        raise _Invalid("rules", f"a policy with no rule would publish every cycle; {_NO_RULE}")
    seen: set[str] = set()
    for i, limit in enumerate(policy.limits):
        for name, _, _ in limit.rules():
            if name in seen:
                raise _Invalid(f"rules.limits[{i}]", f"the rule {name!r} is given twice")
            seen.add(name)
    return policy


def parse_policy(text: str, source: str) -> Policy:
    """The policy in ``text``; ``source`` names it in messages. Raises :class:`PolicyError`."""
    try:
        return _policy(yaml.load(text, Loader=_Loader), source)  # a SafeLoader: plain data only
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "top level"
        problem = getattr(error, "problem", None) or str(error)
        raise PolicyError(f"{source}: {where}: invalid YAML: {problem}") from None
    except _Invalid as error:
        raise PolicyError(f"{source}: {error}") from None


def load_policy(path: Path) -> Policy | None:
    """The policy in the file ``path``, or None when there is no such file. Raises :class:`PolicyError`."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        source = str(path.resolve().relative_to(PROJECT_DIR))
    except ValueError:
        source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(f"{source}: cannot be read: {error}") from None
    return parse_policy(text, source)
