"""Key ranges of a keyed join (``wap.audit.key_ranges``), and the engine's split join on DuckDB against one join."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import duckdb
import pytest

from wap.audit.dialect import DIALECTS
from wap.audit.engine import DiffEngine
from wap.audit.key_ranges import SAMPLES_PER_RANGE, key_ranges, range_filters, sample_positions

# -- the ranges -------------------------------------------------------------------------------------------------


def test_sample_positions_are_evenly_spaced_from_the_first_row_to_the_last() -> None:
    positions = sample_positions(1601, 4)
    assert positions == list(range(0, 1601, 1600 // (4 * SAMPLES_PER_RANGE)))
    assert positions[0] == 0 and positions[-1] == 1600
    assert sample_positions(3, 4) == [0, 1, 2]  # fewer rows than samples: each row once
    assert sample_positions(0, 4) == []


def test_keys_rising_along_the_rows_split_into_ranges_of_about_equal_rows() -> None:
    new = [10 * p for p in sample_positions(1000, 4)]  # keys 0, 10, .. 9990 stored in order
    old = [10 * p + 500 for p in sample_positions(1000, 4)]
    boundaries = key_ranges([new, old], 4)
    assert boundaries is not None and boundaries == sorted(set(boundaries)) and len(boundaries) == 3
    keys = [*range(0, 10_000, 10), *range(500, 10_500, 10)]
    edges = [-1, *boundaries, 10**9]
    per_range = [sum(1 for k in keys if low < k <= high) for low, high in pairwise(edges)]
    spacing = 1000 / (4 * SAMPLES_PER_RANGE)  # rows of a side between two samples
    assert max(per_range) - min(per_range) <= 4 * spacing  # each boundary within a spacing per side of equal


def test_keys_that_fall_anywhere_along_the_rows_are_not_split() -> None:
    rising = list(range(0, 170, 10))
    assert key_ranges([rising, rising], 4) is not None
    for fall in (0, 8, 16):  # a fall at the start, in the middle, at the end
        keys = list(rising)
        keys[fall] = 1000 if fall == 0 else -1
        assert key_ranges([rising, keys], 4) is None
        assert key_ranges([keys, rising], 4) is None


def test_null_keys_and_rows_not_found_are_skipped_but_too_few_keys_tell_nothing() -> None:
    keys: list[int | None] = list(range(17))
    keys[3], keys[16] = None, None  # a NULL key (stored last), a deleted row
    assert key_ranges([keys, list(range(17))], 4) == [4, 8, 12]
    assert key_ranges([[None, 1, 2, None], list(range(17))], 4) is None  # 2 keys cannot show an order


def test_nothing_to_split() -> None:
    rising = list(range(17))
    assert key_ranges([rising, rising], 1) is None
    assert key_ranges([[5] * 17, [5] * 17], 4) is None  # one key value: no boundary
    assert key_ranges([[], []], 4) is None


def test_range_filters_cover_every_key_once_and_null_in_the_first() -> None:
    filters = range_filters("k", [10, 20], "?")
    assert filters == [
        ("(k <= ? or k is null)", [10]),
        ("k > ? and k <= ?", [10, 20]),
        ("k > ?", [20]),
    ]
    conn = duckdb.connect()
    keys = [None, -5, 10, 11, 20, 21, 10**12]
    conn.execute("create table t as select unnest(?::bigint[]) as k", [keys])
    found = []
    for condition, params in filters:
        found += [k for (k,) in conn.execute(f"select k from t where {condition}", params).fetchall()]
    assert sorted(found, key=lambda k: (k is not None, k or 0)) == keys
    assert range_filters("k", [], "?") == [("true", [])]


# -- the engine's split join on DuckDB --------------------------------------------------------------------------

N = 1_500_000  # about 12 of DuckDB's row groups (122,880 rows) per table
SPLIT_ROWS = 500_000  # 3 ranges


def build(conn: duckdb.DuckDBPyConnection, order: str) -> None:
    """``dwh.t`` has ids 0 .. N-1 and one NULL id; the new build drops id % 17 = 0, changes a where id % 13 = 1
    and b where id % 26 = 1, adds ids N .. N + N/50 - 1, and changes the NULL id's row. ``order`` is how the
    rows are stored."""
    conn.execute("create schema develop_dwh")
    conn.execute("create schema dwh")
    rows = "select i as id, cast(i % 7 as integer) as a, 'v' || (i % 11) as b from range(0, {n}) r(i)"
    null_key = "select null, 1, 'null key'"
    conn.execute(f"create table dwh.t as select * from ({rows.format(n=N)} union all {null_key}) order by {order}")
    conn.execute(
        "create table develop_dwh.t as select * from ("
        "select id, case when id % 13 = 1 then a + 1 else a end as a, case when id % 26 = 1 then b || '*' else b end "
        "as b from dwh.t where id is null or id % 17 <> 0 "
        f"union all select {N} + i, 0, 'new' from range(0, {N // 50}) r(i)) "
        f"order by {order}"
    )
    conn.execute("update develop_dwh.t set a = 2 where id is null")


def expected() -> dict[str, Any]:
    """The figures of :func:`build`, counted in Python."""
    kept = [i for i in range(N) if i % 17]
    changed_a = sum(1 for i in kept if i % 13 == 1) + 1  # the NULL id's row
    changed_b = sum(1 for i in kept if i % 26 == 1)
    changed = len({i for i in kept if i % 13 == 1 or i % 26 == 1}) + 1
    return {
        "before": N + 1,
        "after": len(kept) + 1 + N // 50,
        "added": N // 50,
        "removed": N - len(kept),
        "changed": changed,
        "column_changes": {"a": changed_a, "b": changed_b},
    }


def diff(conn: duckdb.DuckDBPyConnection, partition_rows: int) -> tuple[dict[str, Any], list[str]]:
    statements: list[str] = []

    def query(sql: str, params: Any) -> list[tuple]:
        statements.append(sql)
        return conn.execute(sql, list(params)).fetchall()

    engine = DiffEngine(
        query,
        DIALECTS["duckdb"],
        "develop_dwh",
        "dwh",
        keys={"t": ["id"]},
        partition_rows=partition_rows,
        bucket_rows=0,  # the split of the join itself (buckets: test_engine.py)
    )
    (entry,) = engine.diff()
    return entry, [sql for sql in statements if "full outer join" in sql]


@pytest.mark.parametrize(("order", "joins"), [("id", 3), ("hash(id)", 1)], ids=["stored-in-key-order", "shuffled"])
def test_the_split_join_reports_what_one_join_reports(order: str, joins: int) -> None:
    conn = duckdb.connect()
    build(conn, order)
    whole, whole_joins = diff(conn, partition_rows=0)
    split, split_joins = diff(conn, partition_rows=SPLIT_ROWS)
    assert len(whole_joins) == 1
    assert len(split_joins) == joins
    assert split == whole  # every figure, the samples and their order, the content hash
    want = expected()
    rows = split["rows"]
    assert {key: rows[key] for key in ("before", "after", "added", "removed", "changed")} == {
        key: want[key] for key in ("before", "after", "added", "removed", "changed")
    }
    assert split["column_changes"] == want["column_changes"]
    assert split["diff_method"] == "key" and split["content_hash_after"] is not None
    assert [len(split["samples"][kind]) for kind in ("added", "removed", "changed")] == [5, 5, 5]
    assert "struct_pack" in split_joins[0]  # a NULL key: the samples are records of the key, which keep it


def smallest_hashes(conn: duckdb.DuckDBPyConnection, sql: str) -> list[int]:
    return [key for (key,) in conn.execute(f"select id from ({sql}) order by hash(id) limit 5").fetchall()]


@pytest.mark.parametrize(("order", "joins"), [("id", 3), ("hash(id)", 1)], ids=["stored-in-key-order", "shuffled"])
def test_without_null_keys_the_samples_are_plain_keys_of_the_smallest_hashes(order: str, joins: int) -> None:
    conn = duckdb.connect()
    build(conn, order)
    for table in ("dwh.t", "develop_dwh.t"):
        conn.execute(f"delete from {table} where id is null")
    whole, _ = diff(conn, partition_rows=0)
    split, split_joins = diff(conn, partition_rows=SPLIT_ROWS)
    assert len(split_joins) == joins
    assert "struct_pack" not in split_joins[0]
    assert split == whole
    assert split["rows"]["changed"] == expected()["changed"] - 1  # without the NULL id's row
    samples = split["samples"]
    assert [row["id"] for row in samples["added"]] == smallest_hashes(
        conn, "select id from develop_dwh.t except select id from dwh.t"
    )
    assert [row["id"] for row in samples["removed"]] == smallest_hashes(
        conn, "select id from dwh.t except select id from develop_dwh.t"
    )
    assert [pair["after"]["id"] for pair in samples["changed"]] == smallest_hashes(
        conn, "select id from develop_dwh.t n join dwh.t o using (id) where n.a <> o.a or n.b <> o.b"
    )
    assert all(pair["after"]["id"] == pair["before"]["id"] for pair in samples["changed"])


def test_a_duplicate_key_in_one_range_still_falls_back_to_the_multiset_diff() -> None:
    conn = duckdb.connect()
    build(conn, "id")
    # The duplicate stored in key order, so that the join is split by key range (an appended row would not be).
    conn.execute(
        "create or replace table develop_dwh.t as select * from "
        "(select * from develop_dwh.t union all select 5, 0, 'twice') order by id"
    )
    whole, _ = diff(conn, partition_rows=0)
    split, split_joins = diff(conn, partition_rows=SPLIT_ROWS)
    assert len(split_joins) > 1, split_joins  # the keyed joins of the ranges (the multiset diff is no join)
    assert split["duplicate_keys"] and split["diff_method"] == "multiset"
    assert split == whole


def test_views_and_unreadable_samples_get_one_join(caplog: pytest.LogCaptureFixture) -> None:
    """A view has no stored rows to sample; a failed read of a table's sampled keys costs only the split."""
    conn = duckdb.connect()
    conn.execute("create schema develop_dwh")
    conn.execute("create schema dwh")
    conn.execute("create table dwh.base as select i as id, i % 5 as v from range(100) r(i)")
    conn.execute("create view develop_dwh.v as select id, v + (id % 2) as v from dwh.base where id > 3")
    conn.execute("create view dwh.v as select * from dwh.base")
    conn.execute("create table develop_dwh.base as select * from dwh.base where id < 90")
    failing: list[str] = []

    def query(sql: str, params: Any) -> list[tuple]:
        if "rowid" in sql:
            failing.append(sql)
            raise duckdb.CatalogException("no storage here")
        return conn.execute(sql, list(params)).fetchall()

    keys = {"v": ["id"], "base": ["id"]}
    split = DiffEngine(query, DIALECTS["duckdb"], "develop_dwh", "dwh", keys=keys, partition_rows=10).diff()
    whole = DiffEngine(query, DIALECTS["duckdb"], "develop_dwh", "dwh", keys=keys, partition_rows=0).diff()
    assert split == whole
    assert len(failing) == 1  # the table's keys, not the view's
    assert "could not sample the key along the rows" in caplog.text
    by_name = {entry["name"]: entry for entry in split}
    assert by_name["v"]["rows"]["changed"] == 48 and by_name["base"]["rows"]["removed"] == 10


def test_a_column_named_rowid_gets_one_join() -> None:
    """It hides DuckDB's row position: sampled by it, the keys would look in order whatever the storage."""
    conn = duckdb.connect()
    build(conn, "hash(id)")
    for table in ("dwh.t", "develop_dwh.t"):
        conn.execute(f"alter table {table} add column rowid bigint")
        conn.execute(f"update {table} set rowid = id")
    whole, _ = diff(conn, partition_rows=0)
    split, split_joins = diff(conn, partition_rows=SPLIT_ROWS)
    assert len(split_joins) == 1
    assert split == whole and split["rows"]["changed"] == expected()["changed"]
