from __future__ import annotations

from collections import Counter

import pytest

from wap.local.landing import (
    AGE_GROUPS,
    CONTENTS_CODES,
    EMPLOYED_RESIDENCE,
    EMPLOYED_WORKPLACE,
    POPULATION,
    REGIONS,
    SEXES,
    generate_rows,
)


def test_full_grid_of_a_few_thousand_rows() -> None:
    rows = list(generate_rows())
    assert len(rows) == len(REGIONS) * len(SEXES) * len(AGE_GROUPS) * 8 * len(CONTENTS_CODES) == 2880
    assert Counter(row.tid for row in rows) == {str(year): 360 for year in range(2015, 2023)}
    assert len({(r.region, r.kjonn, r.alder, r.contentscode, r.tid) for r in rows}) == len(rows)


def test_deterministic() -> None:
    assert list(generate_rows()) == list(generate_rows())
    assert list(generate_rows(2022, 2022)) == [row for row in generate_rows() if row.tid == "2022"]


def test_values_are_consistent() -> None:
    by_key: dict[tuple[str, ...], dict[str, int]] = {}
    for row in generate_rows():
        by_key.setdefault((row.region, row.kjonn, row.alder, row.tid), {})[row.contentscode] = row.value
    for values in by_key.values():
        assert 0 < values[EMPLOYED_RESIDENCE] <= values[POPULATION]
        assert values[EMPLOYED_WORKPLACE] > 0


@pytest.mark.parametrize(("first", "last"), [(2014, 2021), (2015, 2031), (2022, 2021)])
def test_year_range_is_checked(first: int, last: int) -> None:
    with pytest.raises(ValueError, match="years must lie within"):
        list(generate_rows(first, last))


def test_a_later_load_and_a_load_without_a_region() -> None:
    later = list(generate_rows(2023, 2023))
    assert {row.tid for row in later} == {"2023"} and len(later) == len(list(generate_rows(2022, 2022)))
    lost = list(generate_rows(2023, 2023, without_regions=["1804 Bodø"]))
    assert "1804 Bodø" not in {row.region for row in lost}
    assert len(lost) == len(later) - len([row for row in later if row.region == "1804 Bodø"])
    with pytest.raises(ValueError, match="unknown region"):
        list(generate_rows(2023, 2023, without_regions=["0000 Atlantis"]))
