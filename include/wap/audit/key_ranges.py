"""Key ranges that split a keyed diff's join into smaller joins, each reading only its part of both tables.

One full outer hash join of two 10M-row tables costs about a quarter more than four joins of 2.5M rows each (the
hash table of each is a quarter the size). The split pays only when a key range can be read without scanning the
whole table, that is when the table's storage blocks (DuckDB's row groups, whose min/max the scan checks a filter
against) hold narrow and mostly disjoint key ranges, as a table written in key order does.

Whether a table is stored in key order is judged from a sample: the key at evenly spaced row positions
(:func:`sample_positions`), a few point reads. Keys that rise along the rows mean key order; any fall, and the
join stays whole. The row-group statistics themselves would tell exactly, but reading them costs about a seventh
of a scan of both tables, five times the sample. What the sample cannot see is disorder between its rows: a
stretch shorter than the spacing of the samples (a sixteenth of the table at four ranges), or keys scattered
through otherwise ordered blocks. Such a table is split anyway, and a range then reads the blocks its keys widen.

Correctness never depends on the sample: the ranges cover every key (the first one takes NULL keys too), and a key
falls in the same range on both sides.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

#: Sampled rows per range of the split: 4 ranges read the key at 17 rows of each table.
SAMPLES_PER_RANGE = 4


def sample_positions(rows: int, parts: int) -> list[int]:
    """Evenly spaced row positions, first and last row included, at which to read the key of a table of ``rows``
    rows that would be split into ``parts`` ranges."""
    if rows < 1:
        return []
    count = SAMPLES_PER_RANGE * parts
    return sorted({j * (rows - 1) // count for j in range(count + 1)})


def key_ranges(samples: Sequence[Sequence[Any | None]], parts: int) -> list[Any] | None:
    """Boundaries ``b1 < b2 < ...`` that split the keys of both sides into about ``parts`` ranges of equal rows
    (``key <= b1``, ``b1 < key <= b2``, ..., ``key > bN``), from each side's keys sampled at
    :func:`sample_positions`, in row order (None: a NULL key, or no row at that position).

    None when there is nothing to split, or when a side's keys do not rise along its rows (not in key order), or
    when too few of its rows were found to tell."""
    if parts < 2:
        return None
    merged: list[Any] = []
    for keys in samples:
        present = [key for key in keys if key is not None]
        if len(present) <= parts or any(later < earlier for earlier, later in pairwise(present)):
            return None
        merged += present
    merged.sort()
    boundaries: list[Any] = []
    for part in range(1, parts):
        value = merged[part * len(merged) // parts]
        # The greatest key would leave the last range empty.
        if value < merged[-1] and (not boundaries or value > boundaries[-1]):
            boundaries.append(value)
    return boundaries or None


def range_filters(column: str, boundaries: Sequence[Any], placeholder: str) -> list[tuple[str, list[Any]]]:
    """A condition on ``column`` (SQL) per range, with its parameters; the first range takes NULL keys too."""
    if not boundaries:
        return [("true", [])]
    filters = [(f"({column} <= {placeholder} or {column} is null)", [boundaries[0]])]
    for low, high in pairwise(boundaries):
        filters.append((f"{column} > {placeholder} and {column} <= {placeholder}", [low, high]))
    filters.append((f"{column} > {placeholder}", [boundaries[-1]]))
    return filters
