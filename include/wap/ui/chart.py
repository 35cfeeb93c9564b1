"""Rows per period before/after as an inline SVG bar chart: no script, no CDN, readable without the page's CSS.

One group of two bars per period (production grey, the new build blue); a period that only one side has shows a
single bar, so "the series ended in 2021 and now reaches 2022" is the last group having only a blue bar.
"""

from __future__ import annotations

from html import escape
from typing import Any

BEFORE_COLOUR = "#9aa5b1"
AFTER_COLOUR = "#2f6fde"
_HEIGHT = 180
_TOP = 24
_BOTTOM = 36
_LEFT = 56
_RIGHT = 12
_MAX_GROUP = 56
_MIN_GROUP = 14


def _nice_max(value: int) -> int:
    """The axis top: 1, 2 or 5 times a power of ten, at least ``value``."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _fmt(value: int) -> str:
    return f"{value:,}"


def period_chart(period: dict[str, Any], *, width: int = 720) -> str:
    """SVG markup for one ``relations[].periods[]`` entry of the report."""
    counts = period["counts"]
    label = f"Rows per {period['grain']} of {period['column']}: production (grey) and the new build (blue)"
    if not counts:
        return f'<p class="muted">{escape(label)}: no rows on either side.</p>'
    top = _nice_max(max(max(c["before"], c["after"]) for c in counts))
    plot_height = _HEIGHT - _TOP - _BOTTOM
    group = max(_MIN_GROUP, min(_MAX_GROUP, (width - _LEFT - _RIGHT) // len(counts)))
    width = _LEFT + _RIGHT + group * len(counts)
    bar = max(4, (group - 6) // 2)
    every = max(1, len(counts) // max(1, (width - _LEFT) // 48))  # label every n-th period when crowded

    def y(value: int) -> float:
        return _TOP + plot_height * (1 - value / top)

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {_HEIGHT}" width="{width}" height="{_HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(label)}" data-column="{escape(period["column"])}">',
        f"<title>{escape(label)}</title>",
    ]
    for tick in (0, top // 2, top):
        parts.append(
            f'<line x1="{_LEFT}" x2="{width - _RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e3e6ea"/>'
            f'<text x="{_LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11" fill="#555">'
            f"{_fmt(tick)}</text>"
        )
    for index, count in enumerate(counts):
        x = _LEFT + index * group + (group - 2 * bar) / 2
        for offset, side, colour in ((0, "before", BEFORE_COLOUR), (bar, "after", AFTER_COLOUR)):
            value, name = count[side], escape(str(count["period"]))
            if value:
                parts.append(
                    f'<rect class="bar {side}" x="{x + offset:.1f}" y="{y(value):.1f}" width="{bar}" '
                    f'height="{_TOP + plot_height - y(value):.1f}" fill="{colour}" data-period="{name}" '
                    f'data-rows="{value}"><title>{name} {side}: {_fmt(value)} rows</title></rect>'
                )
        if index % every == 0:
            parts.append(
                f'<text x="{x + bar:.1f}" y="{_HEIGHT - _BOTTOM + 16}" text-anchor="middle" font-size="11" '
                f'fill="#333">{escape(str(count["period"]))}</text>'
            )
    legend_y = _HEIGHT - 8
    parts.append(
        f'<rect x="{_LEFT}" y="{legend_y - 9}" width="10" height="10" fill="{BEFORE_COLOUR}"/>'
        f'<text x="{_LEFT + 14}" y="{legend_y}" font-size="11" fill="#333">production (before)</text>'
        f'<rect x="{_LEFT + 140}" y="{legend_y - 9}" width="10" height="10" fill="{AFTER_COLOUR}"/>'
        f'<text x="{_LEFT + 154}" y="{legend_y}" font-size="11" fill="#333">new build (after)</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
