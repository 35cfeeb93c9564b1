"""This cycle beside the recent ones: per relation, rows added, removed and changed over the last cycles, as a small
inline SVG (the review page) or a line of block characters (``wap status``). No script, no CDN.

The input is the audit's ``policy`` XCom ``history`` (:func:`wap.history.display_series`): ``cycles`` oldest to
newest, the last one this cycle, and per relation a list per figure with ``None`` where the relation was not there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

#: The figures shown, their colours (the page's palette) and labels.
FIGURES = (("added", "#1a7f37", "added"), ("removed", "#c62828", "removed"), ("changed", "#b26a00", "changed"))
_BLOCKS = "▁▂▃▄▅▆▇█"
_WIDTH, _HEIGHT, _PAD = 168, 40, 4


def relation_series(history: Mapping[str, Any] | None, relation: str) -> dict[str, list[int | None]] | None:
    """The relation's figures over the cycles (case-insensitive name); None without at least one earlier cycle."""
    if not history or len(history.get("cycles") or []) < 2:
        return None
    relations = history.get("relations") or {}
    found = relations.get(relation)
    if found is None:
        found = next((item for name, item in relations.items() if name.lower() == relation.lower()), None)
    return found


def new_cycles(series: Mapping[str, Sequence[int | None]]) -> frozenset[int]:
    """The cycles (indices) in which the relation was new: there after the cycle (rows after) with no rows before it
    (rows before None), so its whole content counted as added. They are left out of the scale, else one first load
    flattens every later cycle, and drawn at its top. A series without rows before (older audits): none."""
    before, after = series.get("before"), series.get("after")
    if before is None or after is None:
        return frozenset()
    return frozenset(i for i, (b, a) in enumerate(zip(before, after, strict=False)) if b is None and a is not None)


def _scale(values: Sequence[int | None], skip: frozenset[int] = frozenset()) -> int:
    return max([value for i, value in enumerate(values) if value is not None and i not in skip] + [1])


def series_svg(series: Mapping[str, Sequence[int | None]], cycles: Sequence[Mapping[str, Any]], *, name: str) -> str:
    """Rows added, removed and changed per cycle as three lines on one scale; this cycle (the last) as a dot."""
    count = len(cycles)
    new = new_cycles(series)
    top = max(_scale(series.get(figure) or [], new) for figure, _, _ in FIGURES)
    step = (_WIDTH - 2 * _PAD) / max(count - 1, 1)

    def point(index: int, value: int) -> tuple[float, float]:  # a first cycle above the scale: at its top
        return _PAD + index * step, _HEIGHT - _PAD - (_HEIGHT - 2 * _PAD) * min(value, top) / top

    parts = [
        f'<svg class="series" width="{_WIDTH}" height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-label="{escape(name)}: rows added, removed and changed over the last {count} cycles">',
        f'<line x1="{_PAD}" y1="{_HEIGHT - _PAD}" x2="{_WIDTH - _PAD}" y2="{_HEIGHT - _PAD}" stroke="#d0d7de"/>',
    ]
    for figure, colour, label in FIGURES:
        values = list(series.get(figure) or [])
        points = [point(i, v) for i, v in enumerate(values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        if values and values[-1] is not None:
            x, y = point(len(values) - 1, values[-1])
            tip = f"this cycle: {values[-1]:,} rows {label}"
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{tip}</title></circle>')
    parts.append(f"<title>{escape(series_title(series, cycles))}</title></svg>")
    return "".join(parts)


def series_title(series: Mapping[str, Sequence[int | None]], cycles: Sequence[Mapping[str, Any]]) -> str:
    """The figures as text, cycle by cycle (the SVG's tooltip); a relation's first cycle says so."""
    lines = []
    new = new_cycles(series)
    for index, cycle in enumerate(cycles):
        figures = ", ".join(
            f"{_n((series.get(figure) or [None] * len(cycles))[index])} {label}" for figure, _, label in FIGURES
        )
        when = (
            "this cycle" if index == len(cycles) - 1 else f"{cycle.get('audited_at', '')[:16]} {cycle.get('outcome')}"
        )
        lines.append(f"{when}: {figures}{' (new relation: not on the scale)' if index in new else ''}")
    return "\n".join(lines)


def sparkline(values: Sequence[int | None], skip: frozenset[int] = frozenset()) -> str:
    """Block characters, one per cycle, on the series' own scale without the cycles ``skip`` (:func:`new_cycles`,
    shown as a full block when above it); a space where the relation was not there."""
    top = _scale(values, skip)
    return "".join(" " if v is None else _BLOCKS[min(int(v / top * (len(_BLOCKS) - 1) + 0.5), 7)] for v in values)


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
