"""Bucket plans of the keyed diff by key bucket (``wap.audit.buckets``); the engine's use of them: test_engine.py."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from wap.audit.buckets import (
    NULL_BUCKET,
    BucketPlan,
    bucket_count,
    plan_buckets,
    probe_buckets,
    restricted,
    subset_step,
)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [(0, 1), (999, 1), (1_000, 1), (250_000, 250), (10_000_000, 10_000), (10**9, 10_000)],
)
def test_the_bucket_count_follows_the_table_size_up_to_a_ceiling(rows: int, expected: int) -> None:
    assert bucket_count(rows) == expected


def test_integer_ranges_cover_every_key_in_whole_units() -> None:
    plan = plan_buckets("integer", -100, 500, 20)
    assert (plan.kind, plan.low, plan.width, plan.count) == ("range", -100, 31, 20)
    # every key of the span falls in a bucket below the count, the greatest in the last
    assert (500 - plan.low) // plan.width == plan.count - 1
    assert plan.key_bounds([0]) == (-100, -70)
    assert plan.key_bounds([3, 1, NULL_BUCKET]) == (-69, 23)
    assert plan.key_bounds([NULL_BUCKET]) is None


def test_date_ranges_count_days_and_accept_timestamps_as_bounds() -> None:
    plan = plan_buckets("date", datetime(2020, 1, 1, 12), date(2020, 12, 31), 12)
    assert (plan.kind, plan.low, plan.width, plan.count) == ("range", date(2020, 1, 1), 31, 12)
    assert plan.key_bounds([11]) == (date(2020, 12, 7), date(2021, 1, 6))


@pytest.mark.parametrize(("range_type", "low", "high"), [(None, 1, 5), ("integer", None, None)])
def test_keys_without_a_range_get_hash_buckets(range_type, low, high) -> None:
    assert plan_buckets(range_type, low, high, 64) == BucketPlan("hash", 64)
    assert BucketPlan("hash", 64).key_bounds([1, 2]) is None


def test_a_single_key_value_is_one_bucket() -> None:
    plan = plan_buckets("integer", 7, 7, 100)
    assert (plan.width, plan.count) == (1, 1)


@pytest.mark.parametrize(
    ("differing", "share", "expected"),
    [(25, 0.25, True), (26, 0.25, False), (1, 0.0, False), (100, 1.0, True)],
)
def test_the_join_is_restricted_up_to_a_share_of_the_buckets(differing, share, expected) -> None:
    assert restricted(list(range(differing)), 100, share) is expected


def test_the_probe_takes_the_middle_buckets() -> None:
    assert probe_buckets(10_000) == (4_920, 5_079)
    assert probe_buckets(100, half=80) == (0, 99)


def test_the_per_side_pass_subset_is_every_power_of_two_th_key() -> None:
    # 10M keys: every 65,536th (152 keys); a small table: every 64th at least
    assert subset_step(plan_buckets("integer", 0, 9_999_999, 10_000)) == 65_536
    assert subset_step(plan_buckets("integer", 0, 1_999, 200)) == 64
