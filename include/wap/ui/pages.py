"""HTML pages of the review view: Jinja2 templates in ``templates/``, autoescaped, no script and no CDN."""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from wap.audit.report import headline
from wap.ui.chart import period_chart
from wap.ui.series import relation_series, series_svg

#: Review states (wap.approval.reviews) and the CSS class of their badge.
STATE_CLASS = {
    "building": "grey",
    "pending": "amber",
    "approved": "blue",
    "published": "green",
    "rejected": "red",
    "timed out": "red",
    "failed": "red",
}


def number(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else str(value)


def signed(value: int | None) -> str:
    return "-" if value is None else f"{value:+,}"


def cell(value: Any) -> str:
    return "NULL" if value is None else str(value)


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("wap.ui", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(number=number, signed=signed, cell=cell)
    environment.globals.update(
        state_class=lambda state: STATE_CLASS.get(state, "grey"),
        chart=lambda period: Markup(period_chart(period)),
        relation_series=relation_series,
        series_svg=lambda series, cycles, name: Markup(series_svg(series, cycles, name=name)),
        headline=headline,  # the report's one line, as the Markdown report and Slack give it
    )
    return environment


def render(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(**context)
