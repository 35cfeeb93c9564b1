"""Key ranges of a keyed join (``wap.diff.partition``), and the engine's split join on DuckDB against one join."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import duckdb
import pytest

from wap.diff.dialect import DIALECTS
from wap.diff.engine import DiffEngine
from wap.diff.partition import MAX_OVERSCAN, Block, key_ranges, range_filters, scanned_rows


def ordered_blocks(rows: int, size: int, start: int = 0) -> list[Block]:
    """Blocks of a table stored in key order: keys start .. start + rows - 1, ``size`` a block."""
    return [
        Block(min(size, rows - first), start + first, start + min(first + size, rows) - 1)
        for first in range(0, rows, size)
    ]


# -- the ranges -------------------------------------------------------------------------------------------------


def test_ordered_tables_split_into_ranges_of_about_equal_rows() -> None:
    new, old = ordered_blocks(1000, 100), ordered_blocks(1000, 100, start=50)
    boundaries = key_ranges([new, old], 4)
    assert boundaries is not None and boundaries == sorted(set(boundaries))
    assert len(boundaries) == 3
    edges = [-1, *boundaries, 10**9]
    per_range = [sum(1 for k in [*range(1000), *range(50, 1050)] if low < k <= high) for low, high in pairwise(edges)]
    assert max(per_range) - min(per_range) <= 2 * 100  # within a block per side of equal
    for side in (new, old):
        assert scanned_rows(side, boundaries) <= MAX_OVERSCAN * 1000


def test_keys_in_no_order_are_not_split() -> None:
    """Every block spans (almost) every key: each range would read the whole table."""
    shuffled = [Block(100, i, 1000 - i) for i in range(10)]
    assert key_ranges([shuffled, ordered_blocks(1000, 100)], 4) is None
    assert scanned_rows(shuffled, [250, 500, 750]) == 4 * 1000


def test_blocks_without_bounds_are_read_by_every_range() -> None:
    """A block of NULLs only, or one whose statistics are missing, may hold any key."""
    blocks = [*ordered_blocks(900, 100), Block(100, None, None)]
    assert scanned_rows(blocks, [299, 599]) == 900 + 3 * 100
    assert key_ranges([blocks, blocks], 3) == [299, 599]  # 1200 of 1000 rows read: under the limit


def test_nothing_to_split() -> None:
    assert key_ranges([ordered_blocks(1000, 100)] * 2, 1) is None
    assert key_ranges([[Block(1000, 5, 5)], [Block(1000, 5, 5)]], 4) is None  # one key value: no boundary
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
        query, DIALECTS["duckdb"], "develop_dwh", "dwh", keys={"t": ["id"]}, partition_rows=partition_rows
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


def test_a_duplicate_key_in_one_range_still_falls_back_to_the_multiset_diff() -> None:
    conn = duckdb.connect()
    build(conn, "id")
    conn.execute("insert into develop_dwh.t values (5, 0, 'twice')")
    whole, _ = diff(conn, partition_rows=0)
    split, split_joins = diff(conn, partition_rows=SPLIT_ROWS)
    assert len(split_joins) > 1
    assert split["duplicate_keys"] and split["diff_method"] == "multiset"
    assert split == whole


def test_views_and_unreadable_blocks_get_one_join(caplog: pytest.LogCaptureFixture) -> None:
    """A view has no storage blocks to read; a failed read of a table's blocks costs only the split."""
    conn = duckdb.connect()
    conn.execute("create schema develop_dwh")
    conn.execute("create schema dwh")
    conn.execute("create table dwh.base as select i as id, i % 5 as v from range(100) r(i)")
    conn.execute("create view develop_dwh.v as select id, v + (id % 2) as v from dwh.base where id > 3")
    conn.execute("create view dwh.v as select * from dwh.base")
    conn.execute("create table develop_dwh.base as select * from dwh.base where id < 90")
    failing: list[str] = []

    def query(sql: str, params: Any) -> list[tuple]:
        if "pragma_storage_info" in sql:
            failing.append(sql)
            raise duckdb.CatalogException("no storage here")
        return conn.execute(sql, list(params)).fetchall()

    keys = {"v": ["id"], "base": ["id"]}
    split = DiffEngine(query, DIALECTS["duckdb"], "develop_dwh", "dwh", keys=keys, partition_rows=10).diff()
    whole = DiffEngine(query, DIALECTS["duckdb"], "develop_dwh", "dwh", keys=keys, partition_rows=0).diff()
    assert split == whole
    assert len(failing) == 1  # the table's blocks, not the view's
    assert "could not read the key's storage blocks" in caplog.text
    by_name = {entry["name"]: entry for entry in split}
    assert by_name["v"]["rows"]["changed"] == 48 and by_name["base"]["rows"]["removed"] == 10
