"""The demo landing data: SSB employment statistics (table 11616 shape), deterministic, generated in code.

The numbers are synthetic but consistent: employed residents never exceed the population, and each series
moves smoothly from year to year. The same arguments always give the same rows.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from wap.warehouse.duckdb import DuckDBWarehouse

log = logging.getLogger(__name__)

#: The dbt source ``landing.ssb.befolkning_sysselsetting`` on the embedded warehouse.
LANDING_SCHEMA = "ssb"
LANDING_TABLE = "befolkning_sysselsetting"

FIRST_YEAR = 2015
LAST_YEAR = 2022
#: Production starts with data through this year; the new load adds the next one.
PRODUCTION_THROUGH = 2021
#: The later yearly loads `wap landing load` can make (the demo's routine cycle loads 2023).
LAST_LOADABLE_YEAR = 2030

REGIONS: tuple[tuple[str, int], ...] = (
    # (region, population of a 5-year age group of one sex, roughly)
    ("0301 Oslo", 24000),
    ("4601 Bergen", 10500),
    ("5001 Trondheim", 7600),
    ("1103 Stavanger", 5200),
    ("3024 Bærum", 4400),
    ("5501 Tromsø", 2600),
    ("4204 Kristiansand", 3600),
    ("3005 Drammen", 3300),
    ("1804 Bodø", 1700),
    ("3403 Hamar", 1100),
)
SEXES = ("Menn", "Kvinner")
#: (age group, typical participation rate, number of 5-year cohorts in the group)
AGE_GROUPS: tuple[tuple[str, float, int], ...] = (
    ("15-19 år", 0.38, 1),
    ("20-24 år", 0.70, 1),
    ("25-39 år", 0.82, 3),
    ("40-54 år", 0.84, 3),
    ("55-66 år", 0.70, 2),
    ("67-74 år", 0.18, 2),
)
EMPLOYED_RESIDENCE = "Employed persons by place of residence"
POPULATION = "Population by place of residence"
EMPLOYED_WORKPLACE = "Employed persons by place of work"
CONTENTS_CODES = (EMPLOYED_RESIDENCE, POPULATION, EMPLOYED_WORKPLACE)

COLUMNS = ("region", "kjonn", "alder", "contentscode", "tid", "value")


class LandingRow(NamedTuple):
    """One row of `landing.ssb.befolkning_sysselsetting`."""

    region: str
    kjonn: str
    alder: str
    contentscode: str
    tid: str
    value: int


def _unit(*key: object) -> float:
    """A deterministic number in [0, 1) for ``key`` (stable across processes, unlike ``hash``)."""
    digest = hashlib.sha256("|".join(map(str, key)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def generate_rows(
    first_year: int = FIRST_YEAR, last_year: int = LAST_YEAR, *, without_regions: Iterable[str] = ()
) -> Iterator[LandingRow]:
    """Yield the landing rows for the years ``first_year..last_year`` inclusive (the demo's years, and later ones:
    the next yearly loads), leaving out ``without_regions`` (a load that lost a region's rows)."""
    if not FIRST_YEAR <= first_year <= last_year <= LAST_LOADABLE_YEAR:
        raise ValueError(f"years must lie within {FIRST_YEAR}..{LAST_LOADABLE_YEAR}, got {first_year}..{last_year}")
    left_out = set(without_regions)
    unknown = left_out - {region for region, _ in REGIONS}
    if unknown:
        raise ValueError(f"unknown region(s) {sorted(unknown)}: the regions are {[region for region, _ in REGIONS]}")
    for region, base in REGIONS:
        if region in left_out:
            continue
        # Commuter hubs employ more people than live there; suburbs fewer.
        workplace_factor = 0.75 + 0.6 * _unit(region, "workplace")
        for sex in SEXES:
            sex_factor = 0.97 if sex == "Kvinner" else 1.0
            for age, rate, cohorts in AGE_GROUPS:
                for year in range(first_year, last_year + 1):
                    step = year - FIRST_YEAR
                    population = round(base * cohorts * (1 + 0.012 * step) * (0.9 + 0.2 * _unit(region, sex, age)))
                    wobble = 0.04 * (_unit(region, sex, age, year) - 0.5)
                    participation = min(0.97, max(0.05, rate * sex_factor + wobble + 0.002 * step))
                    employed = round(population * participation)
                    at_work = round(employed * workplace_factor * (0.98 + 0.04 * _unit(region, sex, age, year, "w")))
                    tid = str(year)
                    yield LandingRow(region, sex, age, EMPLOYED_RESIDENCE, tid, employed)
                    yield LandingRow(region, sex, age, POPULATION, tid, population)
                    yield LandingRow(region, sex, age, EMPLOYED_WORKPLACE, tid, at_work)


def load_landing(warehouse: DuckDBWarehouse, rows: Iterable[LandingRow]) -> int:
    """Insert ``rows`` into ``ssb.befolkning_sysselsetting`` of the embedded warehouse, replacing the years they
    cover. Loading a year again replaces it (idempotent). Returns the number of rows written."""
    rows = list(rows)
    years = sorted({row.tid for row in rows})
    table = f"{LANDING_SCHEMA}.{LANDING_TABLE}"
    with warehouse.transaction() as conn:
        conn.execute(f"create schema if not exists {LANDING_SCHEMA}")
        conn.execute(
            f"create table if not exists {table} (region varchar not null, kjonn varchar not null, "
            "alder varchar not null, contentscode varchar not null, tid varchar not null, value bigint)"
        )
        conn.executemany(f"delete from {table} where tid = ?", [[year] for year in years])
        conn.executemany(f"insert into {table} ({', '.join(COLUMNS)}) values (?, ?, ?, ?, ?, ?)", rows)
    log.info("Loaded %d landing rows for %s into %s", len(rows), ", ".join(years), table)
    return len(rows)
