"""This cycle beside the recent ones: the per-relation series of the audit's ``policy`` XCom as an inline SVG (the
review page), block characters (``wap status``) and a tooltip's text."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from wap.ui.series import FIGURES, new_cycles, relation_series, series_svg, series_title, sparkline

SVG = "{http://www.w3.org/2000/svg}"
CYCLES = [
    {"run_id": "r1", "review_id": "a1", "audited_at": "2026-11-01T10:00:00.123456", "outcome": "published"},
    {"run_id": "r2", "review_id": "a2", "audited_at": "2026-11-02T10:00:00", "outcome": "not published"},
    {"run_id": "r3", "review_id": "a3", "audited_at": "2026-11-03T10:00:00", "outcome": "open"},
]
SERIES = {"added": [480, 500, 1200], "removed": [0, 0, 12], "changed": [12, None, 3], "after": [2880, 3380, 4568]}
HISTORY = {"cycles": CYCLES, "relations": {"Sysselsetting": SERIES}}


def _parse(svg: str) -> ET.Element:
    # The page inlines the SVG in HTML, without a namespace; parse it as the browser would read it.
    return ET.fromstring(svg.replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))


def _points(polyline: ET.Element) -> list[tuple[float, float]]:
    return [tuple(float(n) for n in pair.split(",")) for pair in polyline.get("points").split()]


# -- relation_series ----------------------------------------------------------------------------------------------
def test_relation_series_is_looked_up_by_name_then_case_insensitively() -> None:
    assert relation_series(HISTORY, "Sysselsetting") is SERIES
    assert relation_series(HISTORY, "sysselsetting") is SERIES
    assert relation_series(HISTORY, "SYSSELSETTING") is SERIES
    assert relation_series(HISTORY, "other") is None


def test_relation_series_needs_an_earlier_cycle() -> None:
    assert relation_series({**HISTORY, "cycles": CYCLES[-1:]}, "Sysselsetting") is None  # this cycle only
    assert relation_series({**HISTORY, "cycles": []}, "Sysselsetting") is None
    assert relation_series({"relations": HISTORY["relations"]}, "Sysselsetting") is None
    assert relation_series(None, "Sysselsetting") is None
    assert relation_series({}, "Sysselsetting") is None
    assert relation_series({"cycles": CYCLES[:2]}, "Sysselsetting") is None  # no relations at all


# -- series_svg ---------------------------------------------------------------------------------------------------
def test_the_svg_has_three_lines_on_one_scale_and_this_cycle_as_dots() -> None:
    svg = series_svg(SERIES, CYCLES, name="Sysselsetting")
    assert svg.startswith('<svg class="series" ')
    root = _parse(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Sysselsetting: rows added, removed and changed over the last 3 cycles"
    width, height = float(root.get("width")), float(root.get("height"))
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"

    polylines = root.findall(f"{SVG}polyline")
    assert [line.get("stroke") for line in polylines] == [colour for _, colour, _ in FIGURES]
    added, removed, changed = (_points(line) for line in polylines)
    assert len(added) == 3 and len(removed) == 3
    assert len(changed) == 2  # the cycle without the figure is left out of the line
    for x, y in added + removed + changed:
        assert 0 <= x <= width and 0 <= y <= height
    assert [x for x, _ in added] == sorted(x for x, _ in added)  # oldest to newest, left to right
    assert added[-1][1] == min(y for _, y in added + removed + changed)  # the largest figure is the highest point
    assert removed[0][1] == removed[1][1] == max(y for _, y in added + removed + changed)  # zero on the baseline
    assert changed[-1][0] == added[-1][0]  # the changed line skips the middle cycle, not the last

    dots = root.findall(f"{SVG}circle")
    assert [dot.find(f"{SVG}title").text for dot in dots] == [
        "this cycle: 1,200 rows added",
        "this cycle: 12 rows removed",
        "this cycle: 3 rows changed",
    ]
    assert [(float(dot.get("cx")), float(dot.get("cy"))) for dot in dots] == [
        added[-1],
        removed[-1],
        changed[-1],
    ]
    (title,) = root.findall(f"{SVG}title")
    assert title.text == series_title(SERIES, CYCLES)


def test_a_figure_missing_in_this_cycle_has_no_dot_and_one_point_has_no_line() -> None:
    series = {"added": [None, 5], "removed": [3, None], "changed": [None, None]}
    root = _parse(series_svg(series, CYCLES[:2], name="t"))
    assert root.findall(f"{SVG}polyline") == []  # at most one point per figure
    (dot,) = root.findall(f"{SVG}circle")
    assert dot.find(f"{SVG}title").text == "this cycle: 5 rows added"


def test_all_zero_figures_lie_on_the_baseline_without_dividing_by_zero() -> None:
    series = {"added": [0, 0, 0], "removed": [0, 0, 0], "changed": [0, 0, 0]}
    root = _parse(series_svg(series, CYCLES, name="t"))
    baseline = float(root.find(f"{SVG}line").get("y1"))
    polylines = root.findall(f"{SVG}polyline")
    assert len(polylines) == 3
    assert {y for line in polylines for _, y in _points(line)} == {baseline}
    assert len(root.findall(f"{SVG}circle")) == 3


def test_an_empty_series_or_a_single_cycle_is_still_an_svg() -> None:
    root = _parse(series_svg({}, CYCLES, name="t"))
    assert root.findall(f"{SVG}polyline") == [] and root.findall(f"{SVG}circle") == []
    single = _parse(series_svg({"added": [7]}, CYCLES[-1:], name="t"))
    (dot,) = single.findall(f"{SVG}circle")
    assert float(dot.get("cx")) == float(single.find(f"{SVG}line").get("x1"))  # no division by zero cycles


def test_names_are_escaped_in_the_svg() -> None:
    svg = series_svg(SERIES, CYCLES, name='<script>alert("x")</script> & co')
    assert "<script>" not in svg
    root = _parse(svg)
    assert root.get("aria-label").startswith('<script>alert("x")</script> & co: rows added')


# -- series_title -------------------------------------------------------------------------------------------------
def test_the_title_lists_each_cycle_oldest_first_and_this_one_last() -> None:
    assert series_title(SERIES, CYCLES).splitlines() == [
        "2026-11-01T10:00 published: 480 added, 0 removed, 12 changed",
        "2026-11-02T10:00 not published: 500 added, 0 removed, - changed",
        "this cycle: 1,200 added, 12 removed, 3 changed",
    ]


def test_the_title_of_a_figure_not_in_the_series_is_a_dash() -> None:
    assert series_title({"added": [1, 2]}, CYCLES[1:]).splitlines() == [
        "2026-11-02T10:00 not published: 1 added, - removed, - changed",
        "this cycle: 2 added, - removed, - changed",
    ]


# -- sparkline ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "line"),
    [
        ([0, 1, 2, 3, 4, 5, 6, 7], "▁▂▃▄▅▆▇█"),
        ([480, 500, 1200], "▄▄█"),
        ([10, None, 10], "█ █"),
        ([0, 0, 0], "▁▁▁"),  # nothing on a scale of 1: the lowest block, no division by zero
        ([None, None], "  "),
        ([], ""),
        ([1], "█"),
        ([0, 1], "▁█"),
    ],
)
def test_sparkline_scales_to_the_series_own_maximum(values: list[int | None], line: str) -> None:
    assert sparkline(values) == line


# -- a relation's first cycle -------------------------------------------------------------------------------------
# Its first load "added" its whole content (rows before None): 5,000 rows, then days of 40-60 rows.
FIRST = {
    "added": [5000, 40, 60, 50],
    "removed": [0, 0, 0, 0],
    "changed": [0, 2, 0, 1],
    "after": [5000, 5040, 5100, 5150],
    "before": [None, 5000, 5040, 5100],
}
FOUR = [*CYCLES, {"run_id": "r4", "review_id": "a4", "audited_at": "2026-11-04T10:00:00", "outcome": "open"}]


def test_new_cycles_are_the_cycles_without_rows_before() -> None:
    assert new_cycles(FIRST) == {0}
    assert new_cycles({**FIRST, "after": [None, 5040, 5100, 5150]}) == set()  # not there at all: not new
    assert new_cycles(SERIES) == set()  # a series recorded without rows before: none


def test_a_first_cycle_does_not_flatten_the_later_ones_in_the_svg() -> None:
    root = _parse(series_svg(FIRST, FOUR, name="orders"))
    added = next(p for p in root.iter(f"{SVG}polyline") if p.get("stroke") == FIGURES[0][1])
    heights = [y for _, y in _points(added)]
    assert heights[0] == min(heights) == 4.0  # the first cycle at the top of the scale (clamped)
    assert heights[2] == 4.0  # 60, the largest later figure, is the top of the scale
    assert heights[1] > heights[3] > heights[2]  # 40 below 50 below 60: not all flat on the baseline
    assert "(new relation: not on the scale)" in series_title(FIRST, FOUR).splitlines()[0]


def test_a_first_cycle_does_not_flatten_the_later_ones_in_the_sparkline() -> None:
    assert sparkline(FIRST["added"]) == "█▁▁▁"  # on the whole series' scale, the days vanish
    assert sparkline(FIRST["added"], new_cycles(FIRST)) == "█▆█▇"
    assert sparkline([5000], frozenset({0})) == "█"  # only a first cycle: above a scale of 1
