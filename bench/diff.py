"""The diff section of `make bench`: the full diff report against the floor of one scan of both tables.

For 1M and 10M rows, in a DuckDB database file in a temporary directory:

- ``dwh.t`` (production) and ``develop_dwh.t`` (the new build): 5% of the rows changed (one or two columns),
  1% added, 0.5% removed; ``prod_u.u`` and ``develop_u.u``: an identical pair of the same size.
- floor: one scan of both tables of a pair, ``count(*)`` and an order-independent hash of every row.
- report: ``DiffEngine(...).diff()`` on a fresh read-only connection (as the audit opens the warehouse), on the
  changed pair and on the unchanged pair; wall time, and the peak of
  Python's heap during the diff (``tracemalloc``, in a separate run so that tracing does not slow the timings).
  The changed pair is also diffed in one join (``partition_rows=0``): the report of a table whose keys are not
  stored in key order, where the engine cannot split its join by key range (:mod:`wap.audit.key_ranges`); the two
  reports must be identical.
- keyless: the changed pair diffed without a key (a table without a unique test or ``unique_key``): the multiset
  diff by presence of each row hash on the other side and, for comparison, as one aggregation of both sides by row
  hash (``multiset_by_presence=False``, the previous plan) and as the join of both sides' distinct rows
  (``multiset_by_hash=False``, the one before); the three reports must be identical.

The measurements take turns: after one untimed warm-up call of each (the first scan of a fresh connection
loads the tables into DuckDB's buffer pool, which would be charged to the first floor and flatter that round's
ratio), ``REPEATS`` rounds, each report right after a floor of its pair, the changed report after the light
unchanged one. A time printed is the best of its rounds; a ratio is the median over rounds of the report's time
over the floor's just before it (the ratios of the median and of the best times are printed beside it).
Targets (printed, not enforced):
changed report <= 4x floor, unchanged report <= 1.5x floor, keyless report <= 6x floor, peak Python memory from
1M to 10M rows growing by <= 50 MB. Where a report is over its target, its slowest statements are printed (each
statement is timed).
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb

from wap.audit.dialect import DIALECTS
from wap.audit.engine import PARTITION_ROWS, DiffEngine

REPEATS = 9
THREADS = 2
SIZES = (1_000_000, 10_000_000)
TARGET_CHANGED = 4.0
TARGET_UNCHANGED = 1.5
TARGET_KEYLESS = 6.0
TARGET_MEMORY_MB = 50.0

# The changed pair, by construction (ids 0 .. n-1 in production):
#   removed: id % 200 = 0                        -> n / 200 rows (0.5%)
#   changed: id % 20 = 1, column a               -> n / 20 rows (5%)
#            of those, id % 40 = 1, column c too -> n / 40 rows
#   added:   ids n .. n + n / 100 - 1            -> n / 100 rows (1%)
_COLUMNS = """
    id,
    cast(hash(id, 1) % 1000000 as integer) as a,
    cast(hash(id, 2) % 100000000 as double) / 100 as b,
    'customer-' || cast(hash(id, 3) % 1000000 as varchar) as c,
    cast(date '2018-01-01' + cast(hash(id, 4) % 2190 as integer) as date) as d
"""


def table_rows(first: int, count: int) -> str:
    """The bench's rows with ids ``first`` .. ``first + count - 1`` (also ``bench/changes.py``'s)."""
    return f"select {_COLUMNS} from (select cast(range as bigint) as id from range({first}, {first + count}))"


def _build(conn: duckdb.DuckDBPyConnection, n: int) -> None:
    for schema in ("dwh", "develop_dwh", "prod_u", "develop_u"):
        conn.execute(f"create schema {schema}")
    conn.execute(f"create table dwh.t as {table_rows(0, n)}")
    conn.execute(
        "create table develop_dwh.t as "
        "select id, case when id % 20 = 1 then a + 1 else a end as a, b, "
        "case when id % 40 = 1 then c || '*' else c end as c, d "
        "from dwh.t where id % 200 <> 0 "
        f"union all {table_rows(n, n // 100)}"
    )
    conn.execute("checkpoint")
    # The unchanged pair, a separate pass: two tables with the same content, each stored on its own.
    conn.execute(f"create table prod_u.u as {table_rows(0, n)}")
    conn.execute(f"create table develop_u.u as {table_rows(0, n)}")
    conn.execute("checkpoint")


def _expected(n: int) -> dict[str, Any]:
    return {
        "before": n,
        "after": n - n // 200 + n // 100,
        "added": n // 100,
        "removed": n // 200,
        "changed": n // 20,
        "column_changes": {"a": n // 20, "b": 0, "c": n // 40, "d": 0},
    }


def _timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = run()
    return time.perf_counter() - started, value


class _Timings:
    """Wall times of named calls made in rounds (one call of each per round, taking turns), after an untimed
    warm-up call of each."""

    def __init__(self, runs: dict[str, Callable[[], Any]]) -> None:
        self.seconds: dict[str, list[float]] = {name: [] for name in runs}
        self.fastest: dict[str, Any] = {}  # per name, the result of its fastest call
        for run in runs.values():
            run()
        for _ in range(REPEATS):
            for name, run in runs.items():
                seconds, value = _timed(run)
                if not self.seconds[name] or seconds < min(self.seconds[name]):
                    self.fastest[name] = value
                self.seconds[name].append(seconds)

    def best(self, name: str) -> float:
        return min(self.seconds[name])

    def median_ratio(self, name: str, floor: str) -> float:
        """The ratio of the median times: no pairing, printed so that a reader can compare the estimates."""
        return statistics.median(self.seconds[name]) / statistics.median(self.seconds[floor])

    def ratio(self, name: str, floor: str) -> float:
        """The median over rounds of ``name``'s time over ``floor``'s time in the same round.

        Both calls of a round run back to back, so a slow or fast spell of the machine weighs on both and cancels
        out of their ratio. The ratio of the two minimums is printed too, but it favours the short floor: over a
        few rounds the floor (a fraction of a second) is likelier to hit an undisturbed moment than the report.
        """
        return statistics.median(a / b for a, b in zip(self.seconds[name], self.seconds[floor], strict=True))


def floor_scan(conn: duckdb.DuckDBPyConnection, tables: Sequence[str]) -> Callable[[], None]:
    """One scan of each of ``tables``: the row count and an order-independent hash of all columns."""

    def scan() -> None:
        for table in tables:
            conn.execute(f"select count(*), sum(hash(id, a, b, c, d)) from {table}").fetchall()

    return scan


class _Report:
    """Runs the diff of one schema pair, timing each statement it sends to DuckDB."""

    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        write_schema: str,
        prod_schema: str,
        table: str,
        partition_rows: int = PARTITION_ROWS,
        *,
        keyed: bool = True,
        multiset_by_hash: bool = True,
        multiset_by_presence: bool = True,
    ) -> None:
        self.conn = conn
        self.write_schema, self.prod_schema, self.table = write_schema, prod_schema, table
        self.partition_rows = partition_rows
        self.keyed, self.multiset_by_hash, self.multiset_by_presence = keyed, multiset_by_hash, multiset_by_presence

    def run(self) -> tuple[list[dict[str, Any]], list[tuple[float, str]]]:
        statements: list[tuple[float, str]] = []

        def query(sql: str, params: Sequence[Any]) -> list[tuple]:
            started = time.perf_counter()
            rows = self.conn.execute(sql, params).fetchall()
            statements.append((time.perf_counter() - started, sql))
            return rows

        engine = DiffEngine(
            query,
            DIALECTS["duckdb"],
            self.write_schema,
            self.prod_schema,
            keys={self.table: ["id"]} if self.keyed else {},
            sample_rows=5,
            partition_rows=self.partition_rows,
            multiset_by_hash=self.multiset_by_hash,
            multiset_by_presence=self.multiset_by_presence,
        )
        return engine.diff(), statements

    def peak_memory_mb(self) -> float:
        tracemalloc.start()
        try:
            self.run()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return peak / 1e6


def _shape(sql: str, width: int = 480) -> str:
    """A statement in short: repeated aggregates counted, row JSON and filters folded, cut to ``width``."""
    sql = " ".join(sql.split())
    sql = re.sub(r"sum\(case when .*? then 1 else 0 end\)", "count_if(..)", sql)
    sql = re.sub(r"struct_pack\([^()]*\)", "struct_pack(..)", sql)
    sql = re.sub(r"filter \(where (?:[^()]|\([^()]*\))*\)", "filter (where ..)", sql)
    sql = re.sub(r"'\{\"after\":' \|\| .*? \|\| '\}'", "after_before_json", sql)
    sql = re.sub(
        r"(count_if\(\.\.\))(?:, count_if\(\.\.\))+", lambda m: f"{m.group(0).count('count_if')}x count_if(..)", sql
    )
    return sql if len(sql) <= width else sql[: width - 3] + "..."


def _slowest(label: str, statements: list[tuple[float, str]], floor: float, top: int = 3) -> None:
    total = sum(seconds for seconds, _ in statements)
    print(f"diff     {label}: {len(statements)} statements, {total:.2f} s in DuckDB; slowest:")
    for seconds, sql in sorted(statements, key=lambda item: item[0], reverse=True)[:top]:
        print(f"diff       {seconds:6.2f} s = {seconds / floor:3.1f}x floor  {_shape(sql)}")


def _other_ratios(timings: _Timings, name: str, floor: str) -> str:
    """The ratios of the median and of the best times, beside the paired one the verdict is on."""
    best = timings.best(name) / timings.best(floor)
    return f"(medians {timings.median_ratio(name, floor):.2f}x, best {best:.2f}x)"


def _verdict(ok: bool) -> str:
    return "OK" if ok else "OVER"


def _size_label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n:,}"


def _check(entry: dict[str, Any], n: int) -> None:
    expected = _expected(n)
    rows = entry["rows"]
    got = {key: rows[key] for key in ("before", "after", "added", "removed", "changed")}
    got["column_changes"] = entry["column_changes"]
    want = {key: expected[key] for key in got}
    fields = ("before", "after", "added", "removed", "changed")
    print(
        f"diff     check t ({entry['status']}, {entry['diff_method']}): "
        + "  ".join(f"{key} {got[key]:,} (built {want[key]:,})" for key in fields)
    )
    columns = ", ".join(f"{c} {entry['column_changes'].get(c)}/{want['column_changes'][c]}" for c in "abcd")
    samples = {kind: len(entry["samples"][kind]) for kind in ("added", "removed", "changed")}
    print(
        f"diff     check t column changes (report/built): {columns}; samples {samples}; "
        f"{'report matches construction' if got == want else 'REPORT DIFFERS FROM CONSTRUCTION'}"
    )


def _bench_size(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="wap-bench-diff-") as folder:
        conn = duckdb.connect(str(Path(folder) / "bench.duckdb"))
        try:
            conn.execute(f"set threads = {THREADS}")
            conn.execute("set enable_progress_bar = false")
            conn.execute(f"set temp_directory = '{Path(folder) / 'spill'}'")
            started = time.perf_counter()
            _build(conn, n)
            built = time.perf_counter() - started
            # Measure on a fresh read-only connection, as the audit opens the warehouse.
            conn.close()
            conn = duckdb.connect(str(Path(folder) / "bench.duckdb"), read_only=True)
            conn.execute(f"set threads = {THREADS}")
            conn.execute("set enable_progress_bar = false")

            changed = _Report(conn, "develop_dwh", "dwh", "t")
            one_join = _Report(conn, "develop_dwh", "dwh", "t", partition_rows=0)
            unchanged = _Report(conn, "develop_u", "prod_u", "u")
            keyless = _Report(conn, "develop_dwh", "dwh", "t", keyed=False)
            keyless_agg = _Report(conn, "develop_dwh", "dwh", "t", keyed=False, multiset_by_presence=False)
            keyless_join = _Report(conn, "develop_dwh", "dwh", "t", keyed=False, multiset_by_hash=False)
            timings = _Timings(
                {
                    "floor_k": floor_scan(conn, ["dwh.t", "develop_dwh.t"]),
                    "keyless": keyless.run,
                    "floor_ka": floor_scan(conn, ["dwh.t", "develop_dwh.t"]),
                    "keyless_agg": keyless_agg.run,
                    "floor_kj": floor_scan(conn, ["dwh.t", "develop_dwh.t"]),
                    "keyless_join": keyless_join.run,
                    "floor_t1": floor_scan(conn, ["dwh.t", "develop_dwh.t"]),
                    "one_join": one_join.run,
                    "floor_u": floor_scan(conn, ["prod_u.u", "develop_u.u"]),
                    "unchanged": unchanged.run,
                    "floor_t": floor_scan(conn, ["dwh.t", "develop_dwh.t"]),
                    "changed": changed.run,
                }
            )
            floor_t, floor_u = timings.best("floor_t"), timings.best("floor_u")
            changed_s, unchanged_s = timings.best("changed"), timings.best("unchanged")
            changed_x, unchanged_x = timings.ratio("changed", "floor_t"), timings.ratio("unchanged", "floor_u")
            changed_entries, changed_statements = timings.fastest["changed"]
            unchanged_entries, unchanged_statements = timings.fastest["unchanged"]
            changed_mb = changed.peak_memory_mb()
            unchanged_mb = unchanged.peak_memory_mb()
        finally:
            conn.close()

    print(
        f"diff   {_size_label(n):>3} rows   floor {floor_t:.2f} s   "
        f"changed report {changed_s:.2f} s = {changed_x:.2f}x floor {_verdict(changed_x <= TARGET_CHANGED)} "
        f"{_other_ratios(timings, 'changed', 'floor_t')}   "
        f"unchanged report {unchanged_s:.2f} s = {unchanged_x:.2f}x floor ({floor_u:.2f} s) "
        f"{_verdict(unchanged_x <= TARGET_UNCHANGED)} {_other_ratios(timings, 'unchanged', 'floor_u')}   "
        f"peak python mem changed {changed_mb:.2f} MB / unchanged {unchanged_mb:.2f} MB"
        f"   (built in {built:.1f} s)"
    )
    one_join_s, one_join_x = timings.best("one_join"), timings.ratio("one_join", "floor_t1")
    print(
        f"diff          changed report in one join (as for keys not stored in key order, or under "
        f"{1.5 * PARTITION_ROWS / 1e6:g}M rows): {one_join_s:.2f} s = {one_join_x:.2f}x floor "
        f"{_other_ratios(timings, 'one_join', 'floor_t1')}"
    )
    keyless_s, keyless_x = timings.best("keyless"), timings.ratio("keyless", "floor_k")
    join_s, join_x = timings.best("keyless_join"), timings.ratio("keyless_join", "floor_kj")
    (entry_k,) = timings.fastest["keyless"][0]
    (entry_kj,) = timings.fastest["keyless_join"][0]
    agg_s, agg_x = timings.best("keyless_agg"), timings.ratio("keyless_agg", "floor_ka")
    (entry_ka,) = timings.fastest["keyless_agg"][0]
    print(
        f"diff          changed pair without a key (multiset diff): by presence of row hashes {keyless_s:.2f} s = "
        f"{keyless_x:.2f}x floor {_verdict(keyless_x <= TARGET_KEYLESS)} "
        f"{_other_ratios(timings, 'keyless', 'floor_k')}; "
        f"as one aggregation by row hash {agg_s:.2f} s = {agg_x:.2f}x floor; "
        f"as a join of distinct rows {join_s:.2f} s = {join_x:.2f}x floor; rows added {entry_k['rows']['added']:,} "
        f"removed {entry_k['rows']['removed']:,}; "
        + ("the three reports are identical" if entry_k == entry_ka == entry_kj else "THE KEYLESS REPORTS DIFFER")
    )
    (entry,) = changed_entries
    _check(entry, n)
    (entry_one,) = timings.fastest["one_join"][0]
    if entry_one != entry:
        print("diff     check t: THE ONE-JOIN REPORT DIFFERS FROM THE SPLIT JOIN'S")
    (entry_u,) = unchanged_entries
    if entry_u["status"] != "unchanged" or entry_u["diff_method"] != "fast_path":
        print(f"diff     check u: status {entry_u['status']}, method {entry_u['diff_method']} (expected fast path)")
    if changed_x > TARGET_CHANGED:
        _slowest("changed report", changed_statements, floor_t)
    if unchanged_x > TARGET_UNCHANGED:
        _slowest("unchanged report", unchanged_statements, floor_u)
    return {"changed_mb": changed_mb, "unchanged_mb": unchanged_mb}


def bench_diff() -> None:
    results = {n: _bench_size(n) for n in SIZES}
    small, large = results[SIZES[0]], results[SIZES[-1]]
    growth = {kind: large[kind] - small[kind] for kind in ("changed_mb", "unchanged_mb")}
    worst = max(growth.values())
    print(
        f"diff   peak python memory {_size_label(SIZES[-1])} - {_size_label(SIZES[0])}: {worst:+.2f} MB "
        f"(changed {growth['changed_mb']:+.2f} MB / unchanged {growth['unchanged_mb']:+.2f} MB) "
        f"{_verdict(worst <= TARGET_MEMORY_MB)}"
    )
    print(
        f"diff   targets: changed report <= {TARGET_CHANGED:g}x floor, "
        f"unchanged report <= {TARGET_UNCHANGED:g}x floor, keyless report <= {TARGET_KEYLESS:g}x floor, "
        f"peak python memory growth <= {TARGET_MEMORY_MB:g} MB "
        f"(ratios: median of {REPEATS} paired rounds after a warm-up; {THREADS} DuckDB threads)"
    )


if __name__ == "__main__":
    bench_diff()
