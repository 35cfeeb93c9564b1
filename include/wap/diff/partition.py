"""Key ranges that split a keyed diff's join into smaller joins, each reading only its part of both tables.

One full outer hash join of two 10M-row tables costs about a quarter more than four joins of 2.5M rows each (the
hash table of each is a quarter the size). The split pays only when a key range can be read without scanning the
whole table, that is when the table's storage blocks (DuckDB's row groups, whose min/max the scan checks a filter
against) hold narrow and mostly disjoint key ranges, as a table written in key order does. The ranges are chosen
from those blocks' statistics; when reading every range would scan much more than the table once (keys in no
particular order), there is no split.

Correctness never depends on the statistics: the ranges cover every key (the first one takes NULL keys too), and a
key falls in the same range on both sides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

#: How much of a table the ranges may read in all, as a multiple of its rows, for a split to be worth it.
MAX_OVERSCAN = 1.25


@dataclass(frozen=True)
class Block:
    """One storage block of a key column: its rows and the least and greatest key in it (None: not known, or no
    value but NULL, so it may be read by every range)."""

    rows: int
    low: Any | None
    high: Any | None

    @property
    def bounded(self) -> bool:
        return self.low is not None and self.high is not None


def key_ranges(sides: Sequence[Sequence[Block]], parts: int) -> list[Any] | None:
    """Boundaries ``b1 < b2 < ...`` that split the keys of both sides into about ``parts`` ranges of equal rows
    (``key <= b1``, ``b1 < key <= b2``, ..., ``key > bN``), or None when there is nothing to split or when the
    ranges would read more than :data:`MAX_OVERSCAN` times either side's rows."""
    if parts < 2:
        return None
    blocks = sorted((block for side in sides for block in side if block.bounded), key=lambda block: block.high)
    total = sum(block.rows for block in blocks)
    boundaries: list[Any] = []
    seen, goal = 0, 1
    for block in blocks:
        seen += block.rows
        while goal < parts and seen * parts >= total * goal:
            # The greatest key would leave the last range empty.
            if block.high < blocks[-1].high and (not boundaries or block.high > boundaries[-1]):
                boundaries.append(block.high)
            goal += 1
    if not boundaries:
        return None
    for side in sides:
        rows = sum(block.rows for block in side)
        if scanned_rows(side, boundaries) > MAX_OVERSCAN * rows:
            return None
    return boundaries


def scanned_rows(blocks: Sequence[Block], boundaries: Sequence[Any]) -> int:
    """The rows that reading each range of ``boundaries`` separately reads in all: every block whose min/max
    overlaps a range is read for it."""
    edges: list[Any] = [None, *boundaries, None]
    rows = 0
    for low, high in pairwise(edges):  # the range (low, high]; None is unbounded
        for block in blocks:
            if not block.bounded or (
                (low is None or block.high > low) and (high is None or block.low <= high)  # type: ignore[operator]
            ):
                rows += block.rows
    return rows


def range_filters(column: str, boundaries: Sequence[Any], placeholder: str) -> list[tuple[str, list[Any]]]:
    """A condition on ``column`` (SQL) per range, with its parameters; the first range takes NULL keys too."""
    if not boundaries:
        return [("true", [])]
    filters = [(f"({column} <= {placeholder} or {column} is null)", [boundaries[0]])]
    for low, high in pairwise(boundaries):
        filters.append((f"{column} > {placeholder} and {column} <= {placeholder}", [low, high]))
    filters.append((f"{column} > {placeholder}", [boundaries[-1]]))
    return filters
