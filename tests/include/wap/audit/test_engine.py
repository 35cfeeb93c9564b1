"""DiffEngine against crafted data, checked against an independent computation in plain Python.

Every case runs twice: with the DuckDB dialect on an in-memory DuckDB, and with the Snowflake dialect against
fakesnow's server through the real Snowflake connector (``tests/fakesnow_support.py``).

Every expectation here is computed from the Python lists of rows the tables were loaded from (dict lookups and
``collections.Counter``), never by running SQL similar to the engine's.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import pytest

import wap.audit.engine as engine_module
from tests.fakesnow_support import FakesnowServer
from wap.audit.dialect import DIALECTS, Dialect
from wap.audit.engine import DiffEngine, read_catalog
from wap.warehouse.snowflake import fetch_all

WRITE, PROD = "develop_dwh", "dwh"
Columns = Sequence[tuple[str, str]]  # (name, SQL type)
Row = tuple[Any, ...]

EMPTY_COLUMNS: dict[str, list[Any]] = {"added": [], "removed": [], "type_changed": []}


def q(identifier: str) -> str:
    """The test's own identifier quoting (independent of the dialect module)."""
    return '"' + identifier.replace('"', '""') + '"'


class Warehouse:
    """The two schemas on one backend, recording every statement the engine runs."""

    dialect: Dialect

    def __init__(self) -> None:
        self.statements: list[str] = []

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run a statement of the test's own (not recorded)."""
        raise NotImplementedError

    def insert(self, schema: str, name: str, columns: Columns, rows: Sequence[Row]) -> None:
        raise NotImplementedError

    @staticmethod
    def insert_values(conn: duckdb.DuckDBPyConnection, table: str, width: int, rows: Sequence[Row]) -> None:
        """Insert ``rows`` with DuckDB, 500 a statement (``executemany`` runs one statement per row: 20x slower)."""
        row_marks = "(" + ", ".join("?" for _ in range(width)) + ")"
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            marks = ", ".join(row_marks for _ in chunk)
            conn.execute(f"insert into {table} values {marks}", [value for row in chunk for value in row])

    def rel(self, schema: str, name: str) -> str:
        """``schema.name`` in this backend's SQL."""
        return f"{q(schema)}.{q(name)}"

    def type_name(self, sql_type: str) -> str:
        """The type the catalog reports for a column declared ``sql_type``."""
        return sql_type

    def query(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        self.statements.append(sql)
        return self.run(sql, params)

    def table(self, schema: str, name: str, columns: Columns, rows: Sequence[Row]) -> None:
        spec = ", ".join(f"{q(column)} {data_type}" for column, data_type in columns)
        self.run(f"create table {self.rel(schema, name)} ({spec})")
        if rows:
            self.insert(schema, name, columns, rows)

    def pair(
        self,
        name: str,
        new_columns: Columns,
        new_rows: Sequence[Row],
        old_rows: Sequence[Row],
        old_columns: Columns | None = None,
    ) -> None:
        self.table(WRITE, name, new_columns, new_rows)
        self.table(PROD, name, new_columns if old_columns is None else old_columns, old_rows)

    def diff(self, keys: dict[str, list[str]] | None = None, sample_rows: int = 5) -> dict[str, dict[str, Any]]:
        """The report's entries; every case runs each plan, which must all give the very same report:

        - the table figures (metadata) read first, as for large tables, against the per-side pass first, as for
          tables the catalog counts as small (these);
        - the multiset diff by presence of row hashes on the other side, against one aggregation by row hash and a
          join of both sides' distinct rows;
        - the keyed diff by key bucket (forced on these small tables: two rows a bucket), with the join restricted to
          the differing buckets (their rows, or the keys the pass named where a bucket holds one differing row, and
          the other buckets' rows) and left whole, against the per-side pass and one join (no buckets).
        """
        plans = {
            "no buckets": {"bucket_rows": 0},
            "no buckets, table figures first": {"bucket_rows": 0, "bucket_min_rows": 0},
            "multiset by join": {"bucket_rows": 0, "multiset_by_hash": False},
            "multiset by aggregation": {"bucket_rows": 0, "multiset_by_presence": False},
            "buckets, restricted join": {
                "bucket_rows": 2,
                "bucket_min_rows": 0,
                "joined_share": 1.0,
                "decode_buckets": "never",
            },
            "buckets, restricted join, rows named": {
                "bucket_rows": 2,
                "bucket_min_rows": 0,
                "joined_share": 1.0,
                "decode_buckets": "always",
            },
            "buckets, whole join": {"bucket_rows": 2, "bucket_min_rows": 0, "joined_share": 0.0},
        }
        reports = {
            plan: DiffEngine(
                self.query, self.dialect, WRITE, PROD, keys=keys, sample_rows=sample_rows, **options
            ).diff()
            for plan, options in plans.items()
        }
        entries = reports.pop("no buckets")
        for plan, other in reports.items():
            differences = [
                (a["name"], field, a[field], b[field])
                for a, b in zip(entries, other, strict=True)
                for field in a
                if a[field] != b.get(field)
            ]
            assert not differences, f"{plan} and the per-side pass give different reports: {differences}"
        by_name = {entry["name"]: entry for entry in entries}
        assert len(by_name) == len(entries)
        return by_name


class DuckDBTestWarehouse(Warehouse):
    """An in-memory DuckDB, the DuckDB dialect."""

    dialect = DIALECTS["duckdb"]

    def __init__(self) -> None:
        super().__init__()
        self.conn = duckdb.connect()
        self.conn.execute(f"create schema {WRITE}")
        self.conn.execute(f"create schema {PROD}")

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.conn.execute(sql, list(params)).fetchall()

    def insert(self, schema: str, name: str, columns: Columns, rows: Sequence[Row]) -> None:
        self.insert_values(self.conn, self.rel(schema, name), len(columns), rows)


#: What Snowflake's information_schema reports for the types these tests declare (INTEGER is NUMBER(38,0)).
SNOWFLAKE_TYPES = {
    "INTEGER": "NUMBER(38,0)",
    "BIGINT": "NUMBER(38,0)",
    "VARCHAR": "TEXT",
    "DOUBLE": "FLOAT",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP_NTZ",
}


class FakesnowTestWarehouse(Warehouse):
    """A database of fakesnow's server, the Snowflake dialect; the engine's statements go through the real
    Snowflake connector. Schemas are created unquoted (upper case), as dbt-snowflake creates them."""

    dialect = DIALECTS["snowflake"]

    def __init__(self, server: FakesnowServer, database: str) -> None:
        super().__init__()
        self.server = server
        self.database = database
        self.conn = server.connect(database)
        self.cursor = self.conn.cursor()
        self.run(f"create schema {WRITE}")
        self.run(f"create schema {PROD}")

    def close(self) -> None:
        self.cursor.close()
        self.conn.close()

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return fetch_all(self.cursor, sql, params)  # as SnowflakeWarehouse.session runs a statement

    def insert(self, schema: str, name: str, columns: Columns, rows: Sequence[Row]) -> None:
        """Straight into fakesnow's DuckDB: its transpiler takes ~1.7 ms per row of an INSERT through the server."""
        with self.server.duckdb() as duck:
            self.insert_values(duck, f"{q(self.database)}.{self.rel(schema, name)}", len(columns), rows)

    def rel(self, schema: str, name: str) -> str:
        return f"{q(schema.upper())}.{q(name)}"

    def type_name(self, sql_type: str) -> str:
        return SNOWFLAKE_TYPES[sql_type]


def reported(wh: Warehouse, columns: dict[str, list[dict[str, str]]]) -> dict[str, list[dict[str, str]]]:
    """A schema diff written with declared types, as ``wh``'s catalog reports it: a retype between two names of
    one type (INTEGER and BIGINT on Snowflake: NUMBER(38,0)) is no change there."""
    retyped = [
        {**c, "before": wh.type_name(c["before"]), "after": wh.type_name(c["after"])} for c in columns["type_changed"]
    ]
    return {
        "added": [{**c, "type": wh.type_name(c["type"])} for c in columns["added"]],
        "removed": [{**c, "type": wh.type_name(c["type"])} for c in columns["removed"]],
        "type_changed": [c for c in retyped if c["before"] != c["after"]],
    }


@pytest.fixture(params=["duckdb", "fakesnow"])
def wh(request: pytest.FixtureRequest) -> Iterator[Warehouse]:
    if request.param == "duckdb":
        yield DuckDBTestWarehouse()
        return
    server = request.getfixturevalue("fakesnow_server")
    warehouse = FakesnowTestWarehouse(server, request.getfixturevalue("fakesnow_database"))
    yield warehouse
    warehouse.close()


# -- the independent computation --------------------------------------------------------------------------------


def names(columns: Columns) -> list[str]:
    return [column for column, _ in columns]


def as_dicts(columns: Columns, rows: Sequence[Row]) -> list[dict[str, Any]]:
    return [dict(zip(names(columns), row, strict=True)) for row in rows]


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the engine's JSON samples render it."""
    return {k: v.isoformat() if isinstance(v, date | datetime) else v for k, v in row.items()}


@dataclass
class Keyed:
    added: dict[tuple, dict[str, Any]]
    removed: dict[tuple, dict[str, Any]]
    changed: dict[tuple, tuple[dict[str, Any], dict[str, Any]]]  # key -> (before, after)
    column_changes: dict[str, int]


def expect_keyed(new_columns: Columns, new_rows: Sequence[Row], old_columns: Columns, old_rows: Sequence[Row], key):
    """Row-by-row comparison on a unique key; Python's ``!=`` treats None like SQL's ``is distinct from``."""
    new = {tuple(r[k] for k in key): r for r in as_dicts(new_columns, new_rows)}
    old = {tuple(r[k] for k in key): r for r in as_dicts(old_columns, old_rows)}
    assert len(new) == len(new_rows) and len(old) == len(old_rows), "test data: key must be unique"
    old_names = set(names(old_columns))
    compared = [c for c in names(new_columns) if c in old_names and c not in key]
    common = [k for k in new if k in old]
    changed = {k: (old[k], new[k]) for k in common if any(new[k][c] != old[k][c] for c in compared)}
    return Keyed(
        added={k: r for k, r in new.items() if k not in old},
        removed={k: r for k, r in old.items() if k not in new},
        changed=changed,
        column_changes={c: sum(1 for k in common if new[k][c] != old[k][c]) for c in compared},
    )


@dataclass
class Multiset:
    shared: list[str]
    only_new: Counter = field(default_factory=Counter)
    only_old: Counter = field(default_factory=Counter)


def expect_multiset(new_columns: Columns, new_rows: Sequence[Row], old_columns: Columns, old_rows: Sequence[Row]):
    """Rows (over the shared columns) only in new / only in old, with multiplicity."""
    old_names = set(names(old_columns))
    shared = [c for c in names(new_columns) if c in old_names]
    new = Counter(tuple(r[c] for c in shared) for r in as_dicts(new_columns, new_rows))
    old = Counter(tuple(r[c] for c in shared) for r in as_dicts(old_columns, old_rows))
    return Multiset(shared, new - old, old - new)


def assert_keyed_entry(entry: dict[str, Any], expected: Keyed, before: int, after: int, sample_rows: int = 5) -> None:
    assert entry["status"] == "changed"
    assert entry["diff_method"] == "key"
    assert entry["duplicate_keys"] is False
    assert entry["rows"] == {
        "before": before,
        "after": after,
        "added": len(expected.added),
        "removed": len(expected.removed),
        "changed": len(expected.changed),
    }
    assert entry["column_changes"] == expected.column_changes
    key = entry["key"]
    samples = entry["samples"]
    assert len(samples["added"]) == min(sample_rows, len(expected.added))
    assert len(samples["removed"]) == min(sample_rows, len(expected.removed))
    assert len(samples["changed"]) == min(sample_rows, len(expected.changed))
    for sample in samples["added"]:
        assert sample == jsonable(expected.added[tuple(sample[k] for k in key)])
    for sample in samples["removed"]:
        assert sample == jsonable(expected.removed[tuple(sample[k] for k in key)])
    for sample in samples["changed"]:
        assert set(sample) == {"before", "after"}
        before_row, after_row = expected.changed[tuple(sample["after"][k] for k in key)]
        assert sample == {"before": jsonable(before_row), "after": jsonable(after_row)}


def assert_multiset_entry(entry: dict[str, Any], expected: Multiset, before: int, after: int, samples: int = 5):
    assert entry["status"] == "changed"
    assert entry["diff_method"] == "multiset"
    assert entry["rows"] == {
        "before": before,
        "after": after,
        "added": sum(expected.only_new.values()),
        "removed": sum(expected.only_old.values()),
        "changed": None,
    }
    assert entry["column_changes"] == {}
    assert entry["samples"]["changed"] == []
    # one sample per distinct row (multiplicity lives in the counts)
    assert len(entry["samples"]["added"]) == min(samples, len(expected.only_new))
    assert len(entry["samples"]["removed"]) == min(samples, len(expected.only_old))
    for sample in entry["samples"]["added"]:
        assert list(sample) == expected.shared
        assert tuple(sample.values()) in {
            tuple(jsonable(dict(zip(expected.shared, r, strict=True))).values()) for r in expected.only_new
        }
    for sample in entry["samples"]["removed"]:
        assert list(sample) == expected.shared
        assert tuple(sample.values()) in {
            tuple(jsonable(dict(zip(expected.shared, r, strict=True))).values()) for r in expected.only_old
        }


# -- NULLs ------------------------------------------------------------------------------------------------------

NULL_COLUMNS = [("id", "INTEGER"), ("a", "INTEGER"), ("b", "VARCHAR")]
NULL_OLD = [
    (1, None, "x"),  # a: NULL -> value
    (2, 5, "y"),  # a: value -> NULL
    (3, None, None),  # NULL -> NULL in both columns: unchanged
    (4, 7, None),  # b: NULL -> value
    (5, 8, "z"),  # b: value -> NULL, a: value -> value
    (6, 9, "same"),  # unchanged
    (7, None, "gone"),  # removed
]
NULL_NEW = [
    (1, 10, "x"),
    (2, None, "y"),
    (3, None, None),
    (4, 7, "now"),
    (5, 80, None),
    (6, 9, "same"),
    (8, None, None),  # added, all NULL but the key
]


@pytest.mark.parametrize(
    ("new_null_key", "old_null_key", "added", "removed", "changed"),
    [
        pytest.param(None, None, 1, 1, 4, id="no-null-key"),
        pytest.param((None, 1, "k"), (None, 1, "k"), 1, 1, 4, id="null-key-same-both-sides"),
        pytest.param((None, 2, "k"), (None, None, "k"), 1, 1, 5, id="null-key-changed"),
        pytest.param((None, 1, "k"), None, 2, 1, 4, id="null-key-only-in-new"),
        pytest.param(None, (None, 1, "k"), 1, 2, 4, id="null-key-only-in-old"),
    ],
)
def test_nulls_are_compared_null_safely(wh: Warehouse, new_null_key, old_null_key, added, removed, changed) -> None:
    new_rows = NULL_NEW + ([new_null_key] if new_null_key else [])
    old_rows = NULL_OLD + ([old_null_key] if old_null_key else [])
    wh.pair("t", NULL_COLUMNS, new_rows, old_rows)
    entry = wh.diff(keys={"t": ["id"]})["t"]

    expected = expect_keyed(NULL_COLUMNS, new_rows, NULL_COLUMNS, old_rows, ["id"])
    # the Python computation itself agrees with the hand count
    assert (len(expected.added), len(expected.removed), len(expected.changed)) == (added, removed, changed)
    assert entry["key"] == ["id"]
    assert entry["columns"] == EMPTY_COLUMNS
    assert_keyed_entry(entry, expected, before=len(old_rows), after=len(new_rows))
    # a: rows 1 (NULL->10), 2 (5->NULL), 5 (8->80); b: rows 4 (NULL->now), 5 (z->NULL); row 3 NULL->NULL is not
    base = {"a": 3, "b": 2}
    if new_null_key and old_null_key and new_null_key != old_null_key:
        base["a"] += 1
    assert entry["column_changes"] == base
    assert any("full outer join" in sql.lower() for sql in wh.statements)


def test_nulls_without_a_key_multiset(wh: Warehouse) -> None:
    wh.pair("t", NULL_COLUMNS, NULL_NEW, NULL_OLD)
    entry = wh.diff()["t"]
    expected = expect_multiset(NULL_COLUMNS, NULL_NEW, NULL_COLUMNS, NULL_OLD)
    assert entry["key"] is None
    assert_multiset_entry(entry, expected, before=len(NULL_OLD), after=len(NULL_NEW))
    # (3, NULL, NULL) and (6, 9, 'same') match across sides, NULLs included
    assert entry["rows"]["added"] == entry["rows"]["removed"] == 5


def _multiset_plans(wh: Warehouse) -> tuple[bool, bool]:
    """(by presence, by aggregation): which multiset plans the default engine's statements used, on their own."""
    wh.statements.clear()
    DiffEngine(wh.query, wh.dialect, WRITE, PROD, bucket_rows=0).diff()
    lowered = [sql.lower() for sql in wh.statements]
    return any("as __wap_m" in sql for sql in lowered), any("group by __wap_h" in sql for sql in lowered)


@pytest.mark.parametrize("kind", ["table", "view"])
def test_multiset_by_presence_decides_a_pair_of_distinct_rows(wh: Warehouse, kind: str) -> None:
    """Rows present on both sides as the same multiset (here all distinct): the rows absent from the other side
    are the diff, read in one statement, the samples read back by row id (a table on DuckDB) or by row hash."""
    new_rows = [(i, i % 7, f"r{i}") for i in range(1, 41) if i % 9] + [(100 + i, 1, "new") for i in range(6)]
    old_rows = [(i, i % 7, f"r{i}") for i in range(1, 41)]
    old_rows[3] = (4, 99, "was")
    columns = [("id", "INTEGER"), ("a", "INTEGER"), ("b", "VARCHAR")]
    wh.pair("base", columns, new_rows, old_rows)
    if kind == "view":
        for schema in (WRITE, PROD):
            wh.run(f"create view {wh.rel(schema, 'v')} as select * from {wh.rel(schema, 'base')}")
    entry = wh.diff()["v" if kind == "view" else "base"]
    assert_multiset_entry(entry, expect_multiset(columns, new_rows, columns, old_rows), len(old_rows), len(new_rows))
    assert (entry["rows"]["added"], entry["rows"]["removed"]) == (7, 5)
    assert _multiset_plans(wh) == (True, False)


@pytest.mark.parametrize(
    "new_rows, old_rows",
    [
        # a row with two copies here and one there, and a row the other way round: present on both sides alike
        # in count, not as a multiset
        ([(1, "a"), (1, "a"), (2, "b"), (3, "c")], [(1, "a"), (2, "b"), (2, "b"), (3, "c")]),
        # the rows absent from production are two copies of one row: one sample row per hash
        ([(1, "a"), (2, "b"), (9, "z"), (9, "z")], [(1, "a"), (2, "b"), (3, "c")]),
    ],
    ids=["multiplicities differ", "absent rows repeat"],
)
def test_multiset_by_presence_leaves_what_it_cannot_decide_to_the_aggregation(
    wh: Warehouse, new_rows: list[Row], old_rows: list[Row]
) -> None:
    columns = [("id", "INTEGER"), ("v", "VARCHAR")]
    wh.pair("t", columns, new_rows, old_rows)
    entry = wh.diff()["t"]
    assert_multiset_entry(entry, expect_multiset(columns, new_rows, columns, old_rows), len(old_rows), len(new_rows))
    assert _multiset_plans(wh) == (True, True)


# -- duplicate keys ---------------------------------------------------------------------------------------------

DUP_COLUMNS = [("id", "INTEGER"), ("v", "VARCHAR")]
DUP_BASE = [(1, "a"), (2, "b"), (3, "c"), (4, None)]


@pytest.mark.parametrize(
    ("new_rows", "old_rows"),
    [
        pytest.param([*DUP_BASE, (2, "b2")], DUP_BASE, id="dup-in-new"),
        pytest.param([*DUP_BASE, (2, "b")], DUP_BASE, id="exact-dup-row-in-new"),
        pytest.param(DUP_BASE, [*DUP_BASE, (3, "c-old")], id="dup-in-old"),
        pytest.param([*DUP_BASE, (1, "x"), (5, "e")], [*DUP_BASE, (1, "a"), (1, "y")], id="dup-both-sides"),
        pytest.param([*DUP_BASE, (4, None)], [(1, "a"), (2, "B"), (4, None)], id="dup-null-value-rows"),
        pytest.param([(None, "n1"), (None, "n2"), (1, "a")], [(None, "n1"), (1, "a")], id="dup-null-key"),
    ],
)
def test_duplicate_keys_fall_back_to_multiset(wh: Warehouse, new_rows, old_rows) -> None:
    wh.pair("t", DUP_COLUMNS, new_rows, old_rows)
    entry = wh.diff(keys={"t": ["id"]})["t"]
    expected = expect_multiset(DUP_COLUMNS, new_rows, DUP_COLUMNS, old_rows)
    assert entry["duplicate_keys"] is True
    assert entry["key"] == ["id"]
    assert_multiset_entry(entry, expected, before=len(old_rows), after=len(new_rows))


# -- schema changes ---------------------------------------------------------------------------------------------

SCHEMA_ROWS = [(1, 10, "a"), (2, 20, "b"), (3, None, "c")]


@pytest.mark.parametrize("keyed", [True, False], ids=["key", "no-key"])
@pytest.mark.parametrize(
    ("old_columns", "new_columns", "new_rows", "expected_columns"),
    [
        pytest.param(
            [("id", "INTEGER"), ("n", "INTEGER"), ("s", "VARCHAR")],
            [("id", "INTEGER"), ("n", "INTEGER"), ("s", "VARCHAR"), ("extra", "DOUBLE")],
            [(*r, 1.5) for r in SCHEMA_ROWS],
            {"added": [{"name": "extra", "type": "DOUBLE"}], "removed": [], "type_changed": []},
            id="added-column",
        ),
        pytest.param(
            [("id", "INTEGER"), ("n", "INTEGER"), ("s", "VARCHAR")],
            [("id", "INTEGER"), ("n", "INTEGER")],
            [r[:2] for r in SCHEMA_ROWS],
            {"added": [], "removed": [{"name": "s", "type": "VARCHAR"}], "type_changed": []},
            id="dropped-column",
        ),
        pytest.param(
            [("id", "INTEGER"), ("n", "INTEGER"), ("s", "VARCHAR")],
            [("id", "INTEGER"), ("n", "BIGINT"), ("s", "VARCHAR")],
            SCHEMA_ROWS,
            {"added": [], "removed": [], "type_changed": [{"name": "n", "before": "INTEGER", "after": "BIGINT"}]},
            id="int-to-bigint",
        ),
        pytest.param(
            [("id", "INTEGER"), ("n", "INTEGER"), ("s", "VARCHAR")],
            [("id", "INTEGER"), ("n", "VARCHAR"), ("s", "VARCHAR")],
            [(i, None if n is None else str(n), s) for i, n, s in SCHEMA_ROWS],
            {"added": [], "removed": [], "type_changed": [{"name": "n", "before": "INTEGER", "after": "VARCHAR"}]},
            id="int-to-varchar",
        ),
    ],
)
def test_schema_changes_make_the_relation_changed_even_with_equal_data(
    wh: Warehouse, keyed, old_columns, new_columns, new_rows, expected_columns
) -> None:
    wh.pair("t", new_columns, new_rows, SCHEMA_ROWS, old_columns=old_columns)
    entry = wh.diff(keys={"t": ["id"]} if keyed else None)["t"]
    assert entry["columns"] == reported(wh, expected_columns)
    if not any(entry["columns"].values()):  # a retype to a synonym (Snowflake): the same table, the same data
        assert (entry["status"], entry["diff_method"]) == ("unchanged", "fast_path")
        return
    assert entry["status"] == "changed"
    assert entry["rows"]["before"] == entry["rows"]["after"] == len(SCHEMA_ROWS)
    assert entry["rows"]["added"] == entry["rows"]["removed"] == 0
    if keyed:
        assert entry["diff_method"] == "key"
        assert entry["rows"]["changed"] == 0
        # retyped columns are compared by value; added/dropped ones are not compared at all
        shared = [c for c in names(new_columns) if c in names(old_columns) and c != "id"]
        assert entry["column_changes"] == dict.fromkeys(shared, 0)
    else:
        assert entry["diff_method"] == "multiset"
        assert entry["rows"]["changed"] is None


def test_schema_change_with_data_change_counts_rows_over_shared_columns(wh: Warehouse) -> None:
    old_columns = [("id", "INTEGER"), ("n", "INTEGER"), ("gone", "VARCHAR")]
    new_columns = [("id", "INTEGER"), ("new", "VARCHAR"), ("n", "BIGINT")]
    old_rows = [(1, 1, "x"), (2, 2, "y"), (3, 3, "z")]
    new_rows = [(1, "p", 1), (2, "q", 20), (4, "r", 4)]
    wh.pair("t", new_columns, new_rows, old_rows, old_columns=old_columns)
    entry = wh.diff(keys={"t": ["id"]})["t"]
    assert entry["columns"] == reported(
        wh,
        {
            "added": [{"name": "new", "type": "VARCHAR"}],
            "removed": [{"name": "gone", "type": "VARCHAR"}],
            "type_changed": [{"name": "n", "before": "INTEGER", "after": "BIGINT"}],
        },
    )
    expected = expect_keyed(new_columns, new_rows, old_columns, old_rows, ["id"])
    assert_keyed_entry(entry, expected, before=3, after=3)
    assert entry["column_changes"] == {"n": 1}


def test_no_shared_columns_and_no_key(wh: Warehouse) -> None:
    """Every column renamed (e.g. a one-column table whose column was renamed): still a changed relation."""
    wh.pair("t", [("new_name", "INTEGER")], [(1,), (2,)], [(1,)], old_columns=[("old_name", "INTEGER")])
    entry = wh.diff()["t"]
    assert entry["status"] == "changed"
    assert entry["columns"] == reported(
        wh,
        {
            "added": [{"name": "new_name", "type": "INTEGER"}],
            "removed": [{"name": "old_name", "type": "INTEGER"}],
            "type_changed": [],
        },
    )
    assert (entry["rows"]["before"], entry["rows"]["after"]) == (1, 2)


# -- empty tables -----------------------------------------------------------------------------------------------

EMPTY_COLUMNS_SPEC = [("id", "INTEGER"), ("v", "VARCHAR"), ("d", "DATE")]
SOME_ROWS = [(1, "a", date(2020, 1, 5)), (2, None, None), (3, "c", date(2020, 3, 1))]


@pytest.mark.parametrize("keys", [{"t": ["id"]}, None], ids=["key", "no-key"])
def test_empty_on_both_sides_is_unchanged(wh: Warehouse, keys) -> None:
    wh.pair("t", EMPTY_COLUMNS_SPEC, [], [])
    entry = wh.diff(keys=keys)["t"]
    assert entry["status"] == "unchanged"
    assert entry["diff_method"] == "fast_path"
    assert entry["rows"] == {"before": 0, "after": 0, "added": 0, "removed": 0, "changed": 0}
    assert entry["samples"] == {"added": [], "removed": [], "changed": []}
    (period,) = entry["periods"]
    assert period["column"] == "d"
    assert period["counts"] == []
    for side in ("before", "after"):  # no dates at all: either no range or an empty one
        assert period[side] in (None, {"min": None, "max": None})


@pytest.mark.parametrize("keys", [{"t": ["id"]}, None], ids=["key", "no-key"])
@pytest.mark.parametrize("direction", ["filled", "emptied"])
def test_empty_on_one_side(wh: Warehouse, keys, direction) -> None:
    new_rows, old_rows = (SOME_ROWS, []) if direction == "filled" else ([], SOME_ROWS)
    wh.pair("t", EMPTY_COLUMNS_SPEC, new_rows, old_rows)
    entry = wh.diff(keys=keys)["t"]
    if keys:
        expected = expect_keyed(EMPTY_COLUMNS_SPEC, new_rows, EMPTY_COLUMNS_SPEC, old_rows, ["id"])
        assert_keyed_entry(entry, expected, before=len(old_rows), after=len(new_rows))
    else:
        expected_m = expect_multiset(EMPTY_COLUMNS_SPEC, new_rows, EMPTY_COLUMNS_SPEC, old_rows)
        assert_multiset_entry(entry, expected_m, before=len(old_rows), after=len(new_rows))
    assert entry["rows"]["added"] == len(new_rows)
    assert entry["rows"]["removed"] == len(old_rows)
    (period,) = entry["periods"]
    dates = Counter(f"{d.year:04d}-{d.month:02d}" for _, _, d in SOME_ROWS if d)
    side, other = ("after", "before") if direction == "filled" else ("before", "after")
    assert period["grain"] == "month"
    assert period["counts"] == [{"period": p, side: n, other: 0} for p, n in sorted(dates.items())]


# -- added and dropped tables -----------------------------------------------------------------------------------

TABLE_COLUMNS = [("id", "INTEGER"), ("name", "VARCHAR"), ("d", "DATE")]
TABLE_ROWS = [(i, f"n{i}" if i % 3 else None, date(2021, 1, 1) + timedelta(days=40 * i)) for i in range(12)]


@pytest.mark.parametrize("sample_rows", [3, 50])
def test_new_table_only_in_write_schema(wh: Warehouse, sample_rows) -> None:
    wh.table(WRITE, "fresh", TABLE_COLUMNS, TABLE_ROWS)
    (entry,) = wh.diff(keys={"fresh": ["id"]}, sample_rows=sample_rows).values()
    assert entry["name"] == "fresh"
    assert entry["kind"] == "table"
    assert entry["kind_before"] is None
    assert entry["status"] == "added"
    assert entry["diff_method"] is None
    assert entry["columns"] == EMPTY_COLUMNS
    assert entry["rows"] == {"before": None, "after": 12, "added": 12, "removed": None, "changed": None}
    samples = entry["samples"]["added"]
    assert len(samples) == min(sample_rows, 12)
    all_rows = [jsonable(r) for r in as_dicts(TABLE_COLUMNS, TABLE_ROWS)]
    assert all(sample in all_rows for sample in samples)
    assert len({s["id"] for s in samples}) == len(samples)
    assert entry["samples"]["removed"] == entry["samples"]["changed"] == []
    (period,) = entry["periods"]
    assert period["before"] is None
    assert period["after"] == {"min": TABLE_ROWS[0][2].isoformat(), "max": TABLE_ROWS[-1][2].isoformat()}
    assert period["grain"] == "month"  # 440 days
    months = Counter(f"{d.year:04d}-{d.month:02d}" for *_, d in TABLE_ROWS)
    assert period["counts"] == [{"period": p, "before": 0, "after": n} for p, n in sorted(months.items())]


def test_dropped_table_only_in_prod_schema(wh: Warehouse) -> None:
    wh.table(PROD, "old_stuff", TABLE_COLUMNS, TABLE_ROWS)
    (entry,) = wh.diff(sample_rows=4).values()
    assert entry["name"] == "old_stuff"
    assert entry["kind"] == "table"
    assert entry["kind_before"] == "table"
    assert entry["status"] == "removed"
    assert entry["rows"] == {"before": 12, "after": None, "added": None, "removed": 12, "changed": None}
    assert len(entry["samples"]["removed"]) == 4
    all_rows = [jsonable(r) for r in as_dicts(TABLE_COLUMNS, TABLE_ROWS)]
    assert all(sample in all_rows for sample in entry["samples"]["removed"])
    assert entry["samples"]["added"] == []
    (period,) = entry["periods"]
    assert period["after"] is None
    months = Counter(f"{d.year:04d}-{d.month:02d}" for *_, d in TABLE_ROWS)
    assert period["counts"] == [{"period": p, "before": n, "after": 0} for p, n in sorted(months.items())]


# -- views ------------------------------------------------------------------------------------------------------


def test_views(wh: Warehouse) -> None:
    base = [(i, f"v{i}", i % 4 or None) for i in range(20)]
    changed = [(i, f"v{i}" if i != 7 else "seven", i % 4 or None) for i in range(1, 22)]
    columns = [("id", "INTEGER"), ("s", "VARCHAR"), ("g", "INTEGER")]
    wh.table(WRITE, "base_new", columns, changed)
    wh.table(PROD, "base_new", columns, base)
    wh.table(WRITE, "base_same", columns, base)
    wh.table(PROD, "base_same", columns, base)
    for schema in (WRITE, PROD):
        same, new = wh.rel(schema, "base_same"), wh.rel(schema, "base_new")
        wh.run(f"create view {wh.rel(schema, 'v_same')} as select * from {same} where {q('g')} is not null")
        wh.run(f"create view {wh.rel(schema, 'v_changed')} as select * from {new}")
    wh.run(f"create view {wh.rel(WRITE, 'v_fresh')} as select {q('id')}, {q('s')} from {wh.rel(WRITE, 'base_same')}")
    wh.run(f"create view {wh.rel(PROD, 'v_gone')} as select {q('id')} from {wh.rel(PROD, 'base_same')}")
    wh.run(f"create table {wh.rel(PROD, 'was_table')} as select * from {wh.rel(PROD, 'base_same')}")
    wh.run(f"create view {wh.rel(WRITE, 'was_table')} as select * from {wh.rel(WRITE, 'base_same')}")
    entries = wh.diff(keys={"v_changed": ["id"]})

    same = entries["v_same"]
    assert (same["kind"], same["kind_before"]) == ("view", "view")
    assert same["status"] == "unchanged"
    assert same["diff_method"] == "fast_path"
    n_same = sum(1 for r in base if r[2] is not None)
    assert same["rows"] == {"before": n_same, "after": n_same, "added": 0, "removed": 0, "changed": 0}

    v_changed = entries["v_changed"]
    assert (v_changed["kind"], v_changed["kind_before"]) == ("view", "view")
    expected = expect_keyed(columns, changed, columns, base, ["id"])
    assert_keyed_entry(v_changed, expected, before=len(base), after=len(changed))
    assert v_changed["rows"]["changed"] == 1 and v_changed["column_changes"] == {"s": 1, "g": 0}

    fresh = entries["v_fresh"]
    assert (fresh["kind"], fresh["kind_before"], fresh["status"]) == ("view", None, "added")
    assert fresh["rows"]["added"] == len(base)

    gone = entries["v_gone"]
    assert (gone["kind"], gone["kind_before"], gone["status"]) == ("view", "view", "removed")
    assert gone["rows"]["removed"] == len(base)

    kind_change = entries["was_table"]
    assert (kind_change["kind"], kind_change["kind_before"]) == ("view", "table")
    assert kind_change["status"] == "changed"  # same content, but a table became a view
    assert kind_change["rows"]["added"] == kind_change["rows"]["removed"] == 0


# -- no key -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("keys", [None, {"t": ["missing_column"]}, {"other": ["id"]}], ids=["none", "bad", "other"])
def test_table_without_a_usable_key_gets_a_multiset_diff(wh: Warehouse, keys) -> None:
    columns = [("id", "INTEGER"), ("v", "VARCHAR")]
    old_rows = [(1, "a"), (1, "a"), (1, "a"), (2, "b"), (3, None), (3, None), (4, "d")]
    new_rows = [(1, "a"), (2, "b"), (2, "b"), (3, None), (3, None), (3, None), (5, "e"), (4, "D")]
    wh.pair("t", columns, new_rows, old_rows)
    entry = wh.diff(keys=keys)["t"]
    expected = expect_multiset(columns, new_rows, columns, old_rows)
    assert expected.only_new == Counter({(2, "b"): 1, (3, None): 1, (5, "e"): 1, (4, "D"): 1})
    assert expected.only_old == Counter({(1, "a"): 2, (4, "d"): 1})
    assert entry["key"] is None
    assert entry["duplicate_keys"] is False
    assert_multiset_entry(entry, expected, before=len(old_rows), after=len(new_rows))


# -- unicode ----------------------------------------------------------------------------------------------------

UNICODE_TABLE = 'Bestillinger "Særskilt" 2024/ØÅ'
UNICODE_COLUMNS = [("id", "INTEGER"), ("år", "INTEGER"), ("navn", "VARCHAR"), ('si"tat', "VARCHAR")]
UNICODE_OLD = [
    (1, 2023, "Ærlig talt, blåbærsyltetøy", "it's"),
    (2, 2024, "Øl på Åndalsnes 🍺", 'He said "hei"'),
    (3, 1999, "emoji 😀🎉", "back\\slash"),
    (4, 2000, "tab\tand\nnewline", None),
    (5, 2001, "fjernes \u2013 æøå", "\u2018curly\u2019 \u201cquotes\u201d"),
]
UNICODE_NEW = [
    (1, 2023, "Ærlig talt, blåbærsyltetøy", "it's"),
    (2, 2025, "Øl på Åndalsnes 🍺", 'He said "hei"'),
    (3, 1999, "emoji 😀🎊", "back\\slash"),
    (4, 2000, "tab\tand\nnewline", "ny ' \" ø"),
    (6, 2026, "ny rad 🇳🇴 ÆØÅ", "'; drop table x; --"),
]


def test_unicode_in_values_column_and_table_names(wh: Warehouse) -> None:
    wh.pair(UNICODE_TABLE, UNICODE_COLUMNS, UNICODE_NEW, UNICODE_OLD)
    wh.table(WRITE, "Ny tabell ø", UNICODE_COLUMNS, UNICODE_NEW)
    entries = wh.diff(keys={UNICODE_TABLE: ["id"]}, sample_rows=10)
    assert set(entries) == {UNICODE_TABLE, "Ny tabell ø"}

    entry = entries[UNICODE_TABLE]
    expected = expect_keyed(UNICODE_COLUMNS, UNICODE_NEW, UNICODE_COLUMNS, UNICODE_OLD, ["id"])
    assert_keyed_entry(entry, expected, before=5, after=5, sample_rows=10)
    assert entry["column_changes"] == {"år": 1, "navn": 1, 'si"tat': 1}
    assert entry["samples"]["added"] == [
        {"id": 6, "år": 2026, "navn": "ny rad 🇳🇴 ÆØÅ", 'si"tat': "'; drop table x; --"}
    ]
    assert entry["samples"]["removed"] == [jsonable(dict(zip(names(UNICODE_COLUMNS), UNICODE_OLD[4], strict=True)))]

    fresh = entries["Ny tabell ø"]
    assert fresh["status"] == "added"
    assert sorted(fresh["samples"]["added"], key=lambda r: r["id"]) == as_dicts(UNICODE_COLUMNS, UNICODE_NEW)


def test_unicode_in_an_unchanged_quoted_table(wh: Warehouse) -> None:
    wh.pair(UNICODE_TABLE, UNICODE_COLUMNS, UNICODE_OLD, list(reversed(UNICODE_OLD)))
    entry = wh.diff(keys={UNICODE_TABLE: ["id"]})[UNICODE_TABLE]
    assert entry["status"] == "unchanged"
    assert entry["diff_method"] == "fast_path"


# -- fast path --------------------------------------------------------------------------------------------------


def test_identical_tables_are_unchanged_without_a_join(wh: Warehouse) -> None:
    rng = random.Random(7)
    columns = [("id", "INTEGER"), ("v", "VARCHAR"), ("d", "DATE"), ("x", "DOUBLE")]
    rows = [
        (i, rng.choice(["a", "b", None, "æ"]), date(2019, 1, 1) + timedelta(days=rng.randrange(2000)), i / 3)
        for i in range(300)
    ]
    shuffled = rows[:]
    rng.shuffle(shuffled)
    wh.pair("keyed", columns, rows, shuffled)
    wh.pair("unkeyed", columns, rows + rows[:10], shuffled + rows[:10])  # duplicate rows too
    wh.pair("empty", columns, [], [])
    for schema in (WRITE, PROD):
        wh.run(f"create view {wh.rel(schema, 'a_view')} as select {q('id')}, {q('v')} from {wh.rel(schema, 'keyed')}")
    entries = wh.diff(keys={"keyed": ["id"], "a_view": ["id"]})
    assert set(entries) == {"keyed", "unkeyed", "empty", "a_view"}
    for name, entry in entries.items():
        assert entry["status"] == "unchanged", name
        assert entry["diff_method"] == "fast_path", name
        assert entry["columns"] == EMPTY_COLUMNS
        count = {"keyed": 300, "unkeyed": 310, "empty": 0, "a_view": 300}[name]
        assert entry["rows"] == {"before": count, "after": count, "added": 0, "removed": 0, "changed": 0}
        assert entry["samples"] == {"added": [], "removed": [], "changed": []}
        assert entry["column_changes"] == {}
        assert entry["key"] is None and entry["duplicate_keys"] is False
    assert wh.statements, "the recorder saw nothing"
    # no join of rows: the bucket pass joins only the per-bucket figures of both sides
    assert not [sql for sql in wh.statements if "full outer join" in sql.lower() and "__wap_b" not in sql]
    # the unchanged period counts are reported on both sides
    (period,) = entries["keyed"]["periods"]
    assert period["grain"] == "year"
    years = Counter(f"{r[2].year:04d}" for r in rows)
    assert period["counts"] == [{"period": y, "before": n, "after": n} for y, n in sorted(years.items())]


@pytest.mark.parametrize(
    ("new_rows", "old_rows"),
    [
        pytest.param([(1, 2), (2, 1)], [(1, 1), (2, 2)], id="values-swapped-between-rows"),
        pytest.param([(1, 2)], [(2, 1)], id="values-swapped-between-columns"),
        pytest.param([(1, None)], [(None, 1)], id="null-moved"),
        pytest.param([(1, 1), (1, 1), (2, 2)], [(1, 1), (2, 2), (2, 2)], id="multiplicity"),
    ],
)
def test_fast_path_is_not_fooled_by_rearranged_values(wh: Warehouse, new_rows, old_rows) -> None:
    columns = [("a", "INTEGER"), ("b", "INTEGER")]
    wh.pair("t", columns, new_rows, old_rows)
    entry = wh.diff()["t"]
    assert_multiset_entry(entry, expect_multiset(columns, new_rows, columns, old_rows), len(old_rows), len(new_rows))


# -- samples ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sample_rows", [1, 3, 7, 100])
def test_samples_are_bounded_and_faithful(wh: Warehouse, sample_rows) -> None:
    columns = [("k1", "INTEGER"), ("k2", "VARCHAR"), ("v", "INTEGER"), ("d", "DATE")]
    old_rows = [(i, f"k{i % 3}", i * 10, date(2022, 1, 1) + timedelta(days=i)) for i in range(40)]
    new_rows = []
    for i, k2, v, d in old_rows:
        if i % 5 == 0:
            continue  # 8 removed
        if i % 4 == 1:
            v = v + 1 if i % 8 == 1 else None  # 8 changed (5 and 25 are removed)
        new_rows.append((i, k2, v, d))
    new_rows += [(100 + i, "ny", i, None) for i in range(6)]  # 6 added
    wh.pair("t", columns, new_rows, old_rows)
    wh.pair("u", columns, new_rows, old_rows)
    entries = wh.diff(keys={"t": ["k1", "k2"]}, sample_rows=sample_rows)

    entry = entries["t"]
    assert entry["key"] == ["k1", "k2"]
    expected = expect_keyed(columns, new_rows, columns, old_rows, ["k1", "k2"])
    assert (len(expected.added), len(expected.removed), len(expected.changed)) == (6, 8, 8)
    assert_keyed_entry(entry, expected, before=len(old_rows), after=len(new_rows), sample_rows=sample_rows)
    samples = entry["samples"]
    for kind in ("added", "removed", "changed"):
        assert len(samples[kind]) <= sample_rows
    for sample in samples["added"] + samples["removed"]:
        assert isinstance(sample, dict) and list(sample) == names(columns)
    added_keys = {(r[0], r[1]) for r in new_rows} - {(r[0], r[1]) for r in old_rows}
    assert {(s["k1"], s["k2"]) for s in samples["added"]} <= added_keys
    for sample in samples["changed"]:
        assert isinstance(sample["before"], dict) and isinstance(sample["after"], dict)
        assert (sample["before"]["k1"], sample["before"]["k2"]) == (sample["after"]["k1"], sample["after"]["k2"])
        assert sample["before"] != sample["after"]

    unkeyed = entries["u"]
    assert_multiset_entry(
        unkeyed,
        expect_multiset(columns, new_rows, columns, old_rows),
        before=len(old_rows),
        after=len(new_rows),
        samples=sample_rows,
    )


# -- periods ----------------------------------------------------------------------------------------------------


def label(d: date, grain: str) -> str:
    return f"{d.year:04d}" if grain == "year" else f"{d.year:04d}-{d.month:02d}"


def expected_periods(new_dates, old_dates, grain: str) -> list[dict[str, Any]]:
    after = Counter(label(d, grain) for d in new_dates if d is not None)
    before = Counter(label(d, grain) for d in old_dates if d is not None)
    return [{"period": p, "before": before[p], "after": after[p]} for p in sorted(set(after) | set(before))]


@pytest.mark.parametrize(
    ("first", "last", "grain"),
    [
        pytest.param(date(2015, 3, 1), date(2024, 11, 30), "year", id="ten-years"),
        pytest.param(date(2020, 1, 1), date(2023, 6, 30), "year", id="three-and-a-half-years"),
        pytest.param(date(2020, 1, 1), date(2023, 1, 1), "year", id="exactly-36-months"),
        pytest.param(date(2020, 1, 1), date(2022, 12, 31), "month", id="35-months"),
        pytest.param(date(2023, 2, 10), date(2023, 11, 2), "month", id="under-a-year"),
        pytest.param(date(2023, 5, 5), date(2023, 5, 5), "month", id="one-day"),
    ],
)
def test_periods_of_a_date_column(wh: Warehouse, first, last, grain) -> None:
    rng = random.Random(first.toordinal())
    span = (last - first).days
    columns = [("id", "INTEGER"), ("d", "DATE"), ("v", "INTEGER")]

    def some_date() -> date | None:
        return None if rng.random() < 0.1 else first + timedelta(days=rng.randint(0, span))

    old_rows = [(i, some_date(), i) for i in range(400)]
    old_rows += [(400, first, 0), (401, last, 0)]  # the bounds are reached on the old side
    new_rows = [(i, d if rng.random() < 0.7 else some_date(), v) for i, d, v in old_rows[:350]]
    new_rows += [(1000 + i, some_date(), 1) for i in range(80)]
    wh.pair("t", columns, new_rows, old_rows)
    entry = wh.diff(keys={"t": ["id"]})["t"]
    assert entry["status"] == "changed"
    (period,) = entry["periods"]
    assert period["column"] == "d"
    assert period["grain"] == grain
    assert period["counts"] == expected_periods([r[1] for r in new_rows], [r[1] for r in old_rows], grain)
    old_dates = [r[1] for r in old_rows if r[1]]
    new_dates = [r[1] for r in new_rows if r[1]]
    assert period["before"] == {"min": min(old_dates).isoformat(), "max": max(old_dates).isoformat()}
    assert period["after"] == {"min": min(new_dates).isoformat(), "max": max(new_dates).isoformat()}


def test_periods_of_a_timestamp_column_and_unchanged_table(wh: Warehouse) -> None:
    columns = [("id", "INTEGER"), ("ts", "TIMESTAMP"), ("d", "DATE")]
    rows = [
        (i, datetime(2010, 1, 1) + timedelta(hours=97 * i), date(2024, 1, 1) + timedelta(days=i)) for i in range(900)
    ]
    wh.pair("t", columns, rows, rows)
    entry = wh.diff()["t"]
    assert entry["status"] == "unchanged"
    by_column = {p["column"]: p for p in entry["periods"]}
    assert set(by_column) == {"ts", "d"}
    assert by_column["ts"]["grain"] == "year"  # ~10 years
    assert by_column["d"]["grain"] == "month"  # ~2.5 years
    assert by_column["ts"]["counts"] == expected_periods([r[1] for r in rows], [r[1] for r in rows], "year")
    assert by_column["d"]["counts"] == expected_periods([r[2] for r in rows], [r[2] for r in rows], "month")
    assert by_column["ts"]["after"] == {"min": rows[0][1].isoformat(), "max": rows[-1][1].isoformat()}


def test_date_column_retyped_to_timestamp(wh: Warehouse) -> None:
    old_columns = [("id", "INTEGER"), ("d", "DATE")]
    new_columns = [("id", "INTEGER"), ("d", "TIMESTAMP")]
    old_rows = [(i, date(2020, 1, 1) + timedelta(days=30 * i)) for i in range(20)]
    new_rows = [(i, datetime(d.year, d.month, d.day)) for i, d in old_rows]
    wh.pair("t", new_columns, new_rows, old_rows, old_columns=old_columns)
    entry = wh.diff(keys={"t": ["id"]})["t"]
    assert entry["status"] == "changed"
    assert entry["columns"]["type_changed"] == [
        {"name": "d", "before": wh.type_name("DATE"), "after": wh.type_name("TIMESTAMP")}
    ]
    (period,) = entry["periods"]
    assert period["grain"] == "month"
    assert period["counts"] == expected_periods([r[1] for r in new_rows], [r[1] for r in old_rows], "month")


# -- randomized -------------------------------------------------------------------------------------------------

RANDOM_COLUMNS = [("id", "INTEGER"), ("a", "INTEGER"), ("b", "VARCHAR"), ("c", "DATE"), ("x", "DOUBLE")]


def random_value(rng: random.Random, column: str) -> Any:
    if rng.random() < 0.15:
        return None
    if column == "a":
        return rng.randint(-5, 5)
    if column == "b":
        return rng.choice(["æ", "ø", "å", "x", "😀", "'", '"', ""])
    if column == "c":
        return date(2019, 1, 1) + timedelta(days=rng.randrange(365 * 5))
    return rng.choice([0.5, 1.25, -2.0, 1e10, 3.0])


def random_tables(seed: int, size: int) -> tuple[list[Row], list[Row]]:
    rng = random.Random(seed)
    old = [(i, *(random_value(rng, c) for c, _ in RANDOM_COLUMNS[1:])) for i in range(size)]
    new = []
    for row in old:
        roll = rng.random()
        if roll < 0.05:
            continue  # removed
        if roll < 0.25:  # maybe changed: some columns get a fresh value, which may be the same or NULL
            row = tuple(
                random_value(rng, column) if i and rng.random() < 0.4 else value
                for i, ((column, _), value) in enumerate(zip(RANDOM_COLUMNS, row, strict=True))
            )
        new.append(row)
    new += [(size + i, *(random_value(rng, c) for c, _ in RANDOM_COLUMNS[1:])) for i in range(size // 20)]
    rng.shuffle(new)
    return new, old


@pytest.mark.parametrize("seed", [20240601, 7])
def test_randomized_against_python(wh: Warehouse, seed) -> None:
    new_rows, old_rows = random_tables(seed, 2000)
    wh.pair("keyed", RANDOM_COLUMNS, new_rows, old_rows)
    # without the id, the rows collide often: a real multiset
    no_id = RANDOM_COLUMNS[1:3]
    wh.pair("unkeyed", no_id, [r[1:3] for r in new_rows], [r[1:3] for r in old_rows])
    entries = wh.diff(keys={"keyed": ["id"]}, sample_rows=5)

    expected = expect_keyed(RANDOM_COLUMNS, new_rows, RANDOM_COLUMNS, old_rows, ["id"])
    assert expected.changed and expected.added and expected.removed
    entry = entries["keyed"]
    assert_keyed_entry(entry, expected, before=len(old_rows), after=len(new_rows))
    assert set(entry["column_changes"]) == {"a", "b", "c", "x"}
    (period,) = entry["periods"]
    assert period["grain"] == "year"
    assert period["counts"] == expected_periods([r[3] for r in new_rows], [r[3] for r in old_rows], "year")

    expected_m = expect_multiset(no_id, [r[1:3] for r in new_rows], no_id, [r[1:3] for r in old_rows])
    assert any(n > 1 for n in (expected_m.only_new + expected_m.only_old).values())
    assert_multiset_entry(entries["unkeyed"], expected_m, before=len(old_rows), after=len(new_rows))


# -- the two paths to a keyed diff, and settings at their edges -------------------------------------------------

PATH_COLUMNS = [("id", "INTEGER"), ("v", "VARCHAR"), ("d", "DATE")]
PATH_OLD = [(i, f"v{i}", date(2020, 1, 1) + timedelta(days=i)) for i in range(30)]


@pytest.mark.parametrize(
    "new_rows",
    [
        pytest.param([*PATH_OLD[1:], (99, "new", date(2024, 1, 1)), (98, "new", None)], id="count-differs-one-join"),
        pytest.param([*PATH_OLD[1:], (99, "new", date(2024, 1, 1))], id="count-equal-per-side-pass"),
    ],
)
def test_both_keyed_paths_give_the_per_side_figures_of_the_per_side_pass(wh: Warehouse, new_rows) -> None:
    """With different counts, the join computes the content hash and date ranges itself: the same values."""
    wh.pair("t", PATH_COLUMNS, new_rows, PATH_OLD)
    wh.table(WRITE, "same_content", PATH_COLUMNS, new_rows)  # its hash comes from the per-side pass
    wh.table(PROD, "same_content", PATH_COLUMNS, new_rows)
    report = wh.diff(keys={"t": ["id"], "same_content": ["id"]})
    keyed, reference = report["t"], report["same_content"]
    assert keyed["diff_method"] == "key" and reference["diff_method"] == "fast_path"
    assert keyed["content_hash_after"] == reference["content_hash_after"] is not None
    assert keyed["periods"][0]["after"] == reference["periods"][0]["after"]
    dates = [r[2] for r in PATH_OLD]
    assert keyed["periods"][0]["before"] == {"min": min(dates).isoformat(), "max": max(dates).isoformat()}
    assert keyed["rows"]["removed"] == 1 and keyed["rows"]["added"] == len(new_rows) - 29


def test_a_key_from_dbt_matches_the_catalogs_spelling(wh: Warehouse) -> None:
    """dbt writes key columns as ``id``; Snowflake's catalog says ``ID``. Either way the key is used."""
    columns = [("ID", "INTEGER"), ("v", "VARCHAR")]
    wh.pair("t", columns, [(1, "a"), (2, "B"), (3, "c")], [(1, "a"), (2, "b")])
    entry = wh.diff(keys={"t": ["id"]})["t"]
    assert entry["diff_method"] == "key"
    assert entry["key"] == ["ID"]
    assert (entry["rows"]["added"], entry["rows"]["changed"]) == (1, 1)


@pytest.mark.parametrize("keys", [{"t": ["id"]}, None], ids=["key", "no-key"])
def test_no_samples_when_sample_rows_is_zero(wh: Warehouse, keys) -> None:
    wh.pair("t", PATH_COLUMNS, [*PATH_OLD[1:], (99, "x", None)], PATH_OLD)
    wh.table(WRITE, "only_new", PATH_COLUMNS, PATH_OLD)
    report = wh.diff(keys=keys, sample_rows=0)
    assert report["t"]["rows"]["added"] == 1 and report["t"]["rows"]["removed"] == 1
    for entry in report.values():
        assert entry["samples"] == {"added": [], "removed": [], "changed": []}


def test_a_decimal_retyped_with_equal_values_is_not_a_value_change(wh: Warehouse) -> None:
    old_columns = [("id", "INTEGER"), ("amount", "DECIMAL(10,2)")]
    new_columns = [("id", "INTEGER"), ("amount", "DECIMAL(12,4)")]
    rows = [(1, Decimal("1.50")), (2, Decimal("2.25")), (3, None)]
    wh.pair("t", new_columns, [*rows, (4, Decimal("9.1234"))], rows, old_columns=old_columns)
    entry = wh.diff(keys={"t": ["id"]})["t"]
    assert entry["column_changes"] == {"amount": 0}
    assert entry["rows"]["added"] == 1


def test_a_text_key_finds_its_sample_rows(wh: Warehouse) -> None:
    """Sample rows are read back by a one-column key bound as a list (DuckDB) or an IN list (Snowflake)."""
    columns = [("code", "VARCHAR"), ("v", "INTEGER")]
    old_rows = [(f"kø-{i}'\"", i) for i in range(40)] + [(None, -3)]  # the NULL key changes
    new_rows = [(code, v + 1 if v % 3 == 0 else v) for code, v in old_rows if v % 7] + [("😀 new", 1), ("", 2)]
    wh.pair("t", columns, new_rows, old_rows)
    entry = wh.diff(keys={"t": ["code"]}, sample_rows=20)["t"]
    expected = expect_keyed(columns, new_rows, columns, old_rows, ["code"])
    assert_keyed_entry(entry, expected, before=len(old_rows), after=len(new_rows), sample_rows=20)


# -- fingerprints by key bucket ---------------------------------------------------------------------------------


def bucket_engine(wh: Warehouse, keys: dict[str, list[str]], **options: Any) -> DiffEngine:
    options = {"bucket_min_rows": 0, "bucket_rows": 10, **options}
    wh.statements.clear()
    return DiffEngine(wh.query, wh.dialect, WRITE, PROD, keys=keys, **options)


@pytest.mark.parametrize(
    ("key_type", "key_of", "plan"),
    [
        pytest.param("INTEGER", lambda i: i * 3 - 100, "range", id="integer-key-ranges"),
        pytest.param("DATE", lambda i: date(2020, 1, 1) + timedelta(days=i), "range", id="date-key-ranges"),
        pytest.param("VARCHAR", lambda i: f"k{i:04d}", "hash", id="text-key-hashes"),
    ],
)
def test_only_the_differing_buckets_are_joined(wh: Warehouse, key_type, key_of, plan) -> None:
    columns = [("k", key_type), ("v", "INTEGER"), ("s", "VARCHAR")]
    old = [(key_of(i), i, f"s{i}") for i in range(200)]
    new = [row if row[1] != 150 else (row[0], -1, row[2]) for row in old if row[1] != 40] + [(key_of(200), 200, "n")]
    wh.pair("t", columns, new, old)
    keys = {"t": ["k"]}
    engine = bucket_engine(wh, keys, decode_buckets="never")  # the rows of the buckets, none named
    (entry,) = engine.diff()
    count, joined, how = engine.bucket_stats["t"]
    assert 18 <= count <= 20  # 201 rows, 10 a bucket; ranges of whole key units over the span of keys
    assert how == "restricted"
    assert joined == 3 if plan == "range" else 1 <= joined <= 3  # two hashes may share a bucket
    assert entry["diff_method"] == "key" and entry["key"] == ["k"]
    assert entry["rows"] == {"before": 200, "after": 200, "added": 1, "removed": 1, "changed": 1}
    assert entry["column_changes"] == {"v": 1, "s": 0}
    # the keyed join (not the bucket pass, nor the probe of sampled keys' rows)
    joins = [sql for sql in wh.statements if "full outer join" in sql.lower() and not re.search(r"__wap_[bk]\b", sql)]
    assert len(joins) == 1
    if plan == "range":  # the join reads the differing buckets' key range only
        assert " between " in joins[0]
    # the same report as the per-side pass and one join
    whole = DiffEngine(wh.query, wh.dialect, WRITE, PROD, keys=keys, bucket_rows=0).diff()
    assert [entry] == whole


def test_unchanged_buckets_make_the_fast_path(wh: Warehouse) -> None:
    columns = [("id", "INTEGER"), ("v", "VARCHAR")]
    rows = [(i, f"v{i}") for i in range(100)]
    wh.pair("t", columns, rows, list(reversed(rows)))
    engine = bucket_engine(wh, {"t": ["id"]})
    (entry,) = engine.diff()
    # equal counts, not stored in key order: DuckDB's per-side pass says unchanged before any bucket pass
    how = "none, per-side pass" if wh.dialect.side_pass_first else "none"
    assert engine.bucket_stats["t"] == (10, 0, how)
    assert entry["status"] == "unchanged" and entry["diff_method"] == "fast_path" and entry["key"] is None
    assert [entry] == DiffEngine(wh.query, wh.dialect, WRITE, PROD, keys={"t": ["id"]}, bucket_rows=0).diff()
    assert not [sql for sql in wh.statements if "full outer join" in sql.lower() and "__wap_b" not in sql]
    assert any("__wap_b" in sql for sql in wh.statements) != wh.dialect.side_pass_first


@pytest.mark.parametrize(
    ("changed_every", "expected"),
    [
        pytest.param(None, "none, per-side pass", id="unchanged"),
        pytest.param(400, "restricted, 5 buckets by key", id="corrections"),
        pytest.param(1, "whole, after the probe", id="rewrite"),
    ],
)
def test_equal_counts_in_no_order_get_the_per_side_pass_first(wh: Warehouse, changed_every, expected) -> None:
    """Two tables of equal row counts not stored in key order (rows shuffled): on DuckDB the per-side pass comes
    first; unchanged, that is all; changed, the rows of a subset of keys (fingerprinted in the same pass) tell a
    rewrite (the whole join at once) from corrections, whose rows the bucket pass names. Snowflake goes straight to
    the bucket pass. The report is the one join's either way."""
    columns = [("id", "INTEGER"), ("v", "INTEGER"), ("s", "VARCHAR")]
    old = [(i, i, f"s{i}") for i in range(2000)]
    # corrections: keys 7, 407, .., none in the per-side pass's subset of keys (every 64th from 0)
    new = [(i, -v - 1 if changed_every and i % changed_every == 7 % changed_every else v, s) for i, v, s in old]
    shuffled = random.Random(5)
    wh.pair("t", columns, shuffled.sample(new, len(new)), shuffled.sample(old, len(old)))
    engine = bucket_engine(wh, {"t": ["id"]}, bucket_rows=10, max_buckets=200)
    (entry,) = engine.diff()
    plain = DiffEngine(wh.query, wh.dialect, WRITE, PROD, keys={"t": ["id"]}, bucket_rows=0).diff()
    assert [entry] == plain
    count, _, how = engine.bucket_stats["t"]
    assert count == 200
    if wh.dialect.side_pass_first:
        assert how == expected
        passes = [sql for sql in wh.statements if "__wap_b" in sql]
        assert not passes if changed_every in (None, 1) else len(passes) == 1
    else:
        assert how.split(",")[0] in ("none", "restricted", "whole")


def test_most_buckets_differing_get_one_join(wh: Warehouse) -> None:
    columns = [("id", "INTEGER"), ("v", "INTEGER")]
    wh.pair("t", columns, [(i, i + 1) for i in range(100)], [(i, i) for i in range(100)])
    engine = bucket_engine(wh, {"t": ["id"]})
    (entry,) = engine.diff()
    # DuckDB: after the per-side pass, the sampled keys' rows tell a rewrite, and the bucket pass is skipped
    how = "whole, after the probe" if wh.dialect.side_pass_first else "whole"
    assert engine.bucket_stats["t"] == (10, 10, how)
    assert entry["rows"]["changed"] == 100


def test_a_duplicate_key_in_an_unchanged_bucket_is_not_looked_for(wh: Warehouse) -> None:
    """The one way the bucket plan's report differs from one join's: a key duplicated alike on both sides in a bucket
    that did not change is not seen (its rows are not joined), so the differing buckets get the keyed diff, where
    one join finds the duplicate and falls back to the multiset diff. The figures of the differing buckets are
    right either way; a key comes from a unique test or ``unique_key``, which the build checks."""
    columns = [("id", "INTEGER"), ("v", "INTEGER")]
    old = [(i, i) for i in range(100)] + [(5, 5)]
    new = [(i, i if i != 90 else -1) for i in range(100)] + [(5, 5)]
    wh.pair("t", columns, new, old)
    engine = bucket_engine(wh, {"t": ["id"]})
    (entry,) = engine.diff()
    assert engine.bucket_stats["t"][2].startswith("restricted")  # (DuckDB: the row named by the pass)
    assert (entry["diff_method"], entry["duplicate_keys"]) == ("key", False)
    assert entry["rows"]["changed"] == 1
    (whole,) = DiffEngine(wh.query, wh.dialect, WRITE, PROD, keys={"t": ["id"]}, bucket_rows=0).diff()
    assert (whole["diff_method"], whole["duplicate_keys"]) == ("multiset", True)
    assert (whole["rows"]["added"], whole["rows"]["removed"]) == (1, 1)


@pytest.mark.parametrize(
    ("changed_every", "expected"),
    [
        pytest.param(1, "whole, after the probe", id="changes-everywhere"),
        # one changed row in each of 4 buckets, 1 of them in the probe's slice: the pass names them
        pytest.param(500, "restricted, 4 buckets by key", id="few-changes"),
    ],
)
@pytest.mark.parametrize("duplicate", [False, True], ids=["unique", "duplicate-key"])
def test_a_probe_of_the_middle_buckets_goes_straight_to_the_whole_join(
    wh: Warehouse, changed_every, expected, duplicate
) -> None:
    """Range buckets of tables stored in key order: a middle slice of buckets is compared first; where most of it
    differs, the whole join follows without the pass over every bucket. Where the dialect cannot tell the storage
    order (Snowflake), there is no probe."""
    columns = [("id", "INTEGER"), ("v", "INTEGER")]
    old = [(i, i) for i in range(2000)] + ([(1000, 7)] if duplicate else [])
    new = [(i, i + 1 if i % changed_every == 0 else i) for i in range(2000)] + ([(1000, 7)] if duplicate else [])
    wh.pair("t", columns, sorted(new), sorted(old))  # stored in key order
    engine = bucket_engine(wh, {"t": ["id"]}, bucket_rows=1, max_buckets=2000)
    (entry,) = engine.diff()
    how = engine.bucket_stats["t"][2]
    if wh.dialect.name == "snowflake":
        assert how in ("restricted", "whole")
    elif not (duplicate and expected.startswith("restricted")):
        assert how == expected
    plain = DiffEngine(wh.query, wh.dialect, WRITE, PROD, keys={"t": ["id"]}, bucket_rows=0).diff()
    if not duplicate or not how.startswith("restricted"):
        assert [entry] == plain


def _named_rows_pair(wh: Warehouse) -> list[Row]:
    """2,000 keyed rows in key order, 10 a bucket: one row changed, one added and one removed, each alone in its
    bucket; two rows changed in one bucket; a row changed in the probe's slice (buckets 80-239)."""
    columns = [("id", "INTEGER"), ("v", "INTEGER"), ("s", "VARCHAR")]
    old = [(i, i, f"s{i}") for i in range(0, 2000, 2)] + [(1995, 0, "gone")]
    new = {row[0]: row for row in old if row[0] != 1995}
    new[20] = (20, -1, "s20")  # changed, alone in bucket 1
    new[51] = (51, 5, "new")  # added, alone in bucket 2 (keys 50-59: 50 52 .. 58, now 51 too)
    new[300] = (300, 300, "t300")  # changed, alone
    new[1000] = (1000, 7, "s1000")  # changed: in the probe's slice
    new[1500], new[1502] = (1500, 0, "s1500"), (1502, 0, "s1502")  # two changed rows in one bucket
    wh.pair("t", columns, sorted(new.values()), sorted(old))
    return sorted(new.values())


def test_the_bucket_pass_names_a_bucket_s_one_differing_row(wh: Warehouse) -> None:
    """Where a differing bucket holds one differing row (added, removed or changed), the bucket pass names its
    key, and the restricted join reads those keys' rows and the other differing buckets' rows: the report is the
    one join's."""
    _named_rows_pair(wh)
    engine = bucket_engine(wh, {"t": ["id"]}, decode_buckets="always")
    (entry,) = engine.diff()
    plain = DiffEngine(wh.query, wh.dialect, WRITE, PROD, keys={"t": ["id"]}, bucket_rows=0).diff()
    assert [entry] == plain
    assert (entry["rows"]["added"], entry["rows"]["removed"], entry["rows"]["changed"]) == (1, 1, 5)
    assert engine.bucket_stats["t"] == (100, 6, "restricted, 5 buckets by key")


def test_a_wrongly_named_row_leaves_the_join_to_the_differing_buckets(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bucket's sums can name a key by chance when the bucket holds several differing rows: the joined rows then
    do not account for the whole change, and the join of every differing bucket's rows decides."""
    _named_rows_pair(wh)
    real = engine_module._decoded

    def wrong(plan: Any, item: Any) -> Any:
        named = real(plan, item)
        return None if named is None else (named[0] + 2, *named[1:])  # another key of the same bucket

    monkeypatch.setattr(engine_module, "_decoded", wrong)
    engine = bucket_engine(wh, {"t": ["id"]}, decode_buckets="always")
    (entry,) = engine.diff()
    plain = DiffEngine(wh.query, wh.dialect, WRITE, PROD, keys={"t": ["id"]}, bucket_rows=0).diff()
    assert [entry] == plain
    assert engine.bucket_stats["t"] == (100, 6, "restricted")


def test_unchanged_relations_cost_a_constant_number_of_statements(wh: Warehouse) -> None:
    """The catalog, the table figures, the per-side pass and the periods of all relations are batched (a statement
    per shape of row): 3 or 30 unchanged relations (keyed and keyless tables with a date column, views) send the
    same statements."""
    columns = [("id", "INTEGER"), ("d", "DATE"), ("s", "VARCHAR")]
    rows = [(i, date(2020, 1, 1) + timedelta(days=i), f"s{i}") for i in range(20)]

    def statements(count: int) -> int:
        for schema in (WRITE, PROD):
            wh.run(f"drop schema if exists {q(schema)} cascade")
            wh.run(f"create schema {q(schema)}")
        keys = {}
        for i in range(count):
            wh.pair(f"t{i}", columns, rows, list(reversed(rows)))
            if i % 3 == 0:
                keys[f"t{i}"] = ["id"]
            if i % 3 == 1:
                for schema in (WRITE, PROD):
                    wh.run(f"create view {wh.rel(schema, f'v{i}')} as select * from {wh.rel(schema, f't{i}')}")
        wh.statements.clear()
        entries = DiffEngine(wh.query, wh.dialect, WRITE, PROD, keys=keys).diff()
        assert {entry["status"] for entry in entries} == {"unchanged"}
        assert all(entry["periods"] and entry["periods"][0]["counts"] for entry in entries)
        return len(wh.statements)

    # the catalog (whose row counts tell that these tables are small: no table figures); the per-side pass; the
    # periods
    assert statements(3) == statements(30) == 3


def test_small_tables_are_compared_without_their_table_figures(wh: Warehouse) -> None:
    """Two small keyed tables whose counts differ: the catalog's row counts tell they are small, so no statement
    reads their table figures (the per-side pass gives the counts); the report is the one made from the figures
    (as for tables of ``bucket_min_rows`` rows or more, here 0)."""
    columns = [("id", "INTEGER"), ("v", "INTEGER"), ("d", "DATE")]
    old = [(i, i, date(2024, 1 + i % 12, 1)) for i in range(50)]
    wh.pair("t", columns, [*old[:40], (60, 6, date(2025, 3, 1))], old)
    wh.statements.clear()
    (entry,) = DiffEngine(wh.query, wh.dialect, WRITE, PROD, keys={"t": ["id"]}).diff()
    figures = "count(*) as __wap_v0, min("  # a row of count, min and max: the table figures' shape
    assert wh.statements and not [sql for sql in wh.statements if figures in sql]
    rows = entry["rows"]
    assert (rows["before"], rows["after"], rows["added"], rows["removed"], rows["changed"]) == (50, 41, 1, 10, 0)
    figures_first = DiffEngine(wh.query, wh.dialect, WRITE, PROD, keys={"t": ["id"]}, bucket_rows=0, bucket_min_rows=0)
    wh.statements.clear()
    assert [entry] == figures_first.diff()
    assert [sql for sql in wh.statements if figures in sql]


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        pytest.param(lambda i: True, "whole, after the probe", id="rewritten"),
        pytest.param(lambda i: i >= 1960 and i % 7 == 0, "restricted", id="recent-keys"),
    ],
)
def test_a_sample_of_keys_tells_a_rewrite_from_a_days_load(wh: Warehouse, changed, expected) -> None:
    """Tables not stored in key order whose counts differ: the rows of sampled keys are compared first; where many
    differ all over the key range, the whole join follows at once."""
    columns = [("id", "INTEGER"), ("v", "INTEGER")]
    old = [(i, i) for i in range(2000)]
    new = [(i, -i if changed(i) else i) for i in range(2000)] + [(2000 + i, 0) for i in range(20)]
    rng = random.Random(7)
    rng.shuffle(old)
    rng.shuffle(new)
    wh.pair("t", columns, new, old)
    engine = bucket_engine(wh, {"t": ["id"]}, bucket_rows=10)
    (entry,) = engine.diff()
    assert engine.bucket_stats["t"][2] == expected
    assert entry["rows"]["added"] == 20
    assert [entry] == DiffEngine(wh.query, wh.dialect, WRITE, PROD, keys={"t": ["id"]}, bucket_rows=0).diff()


def test_the_catalog_counts_a_table_s_rows_and_not_a_view_s(wh: Warehouse) -> None:
    """The row counts the catalog keeps (a plan's hint): a table's rows, none for a view."""
    columns = [("id", "INTEGER")]
    wh.pair("t", columns, [(i,) for i in range(7)], [(1,)])
    wh.run(f"create view {wh.rel(WRITE, 'v')} as select * from {wh.rel(WRITE, 't')}")
    catalog = read_catalog(wh.query, wh.dialect, [WRITE, PROD])
    assert (catalog[WRITE]["t"].rows, catalog[PROD]["t"].rows, catalog[WRITE]["v"].rows) == (7, 1, None)
    assert catalog[WRITE]["v"].kind == "view"


def test_the_session_groups_buckets_in_an_array_once(wh: Warehouse) -> None:
    """DuckDB: one statement, before the first bucket pass, lets the session group every bucket in a perfect hash
    table (Snowflake: none); two bucketed relations send it once, and the reports are the per-side pass's."""
    columns = [("id", "INTEGER"), ("v", "INTEGER")]
    for name in ("a", "b"):
        wh.pair(name, columns, [(i, i if i != 5 else -1) for i in range(40)], [(i, i) for i in range(40)])
    wh.statements.clear()
    entries = bucket_engine(wh, {"a": ["id"], "b": ["id"]}).diff()
    settings = [sql for sql in wh.statements if "perfect_ht_threshold" in sql]
    assert settings == (["set perfect_ht_threshold = 14"] if wh.dialect is DIALECTS["duckdb"] else [])
    assert [entry["rows"]["changed"] for entry in entries] == [1, 1]
    plain = DiffEngine(wh.query, wh.dialect, WRITE, PROD, keys={"a": ["id"], "b": ["id"]}, bucket_rows=0).diff()
    assert entries == plain
