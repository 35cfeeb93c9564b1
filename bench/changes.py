"""The diff-cost section of `make bench`: the keyed report of typical changes against the floor, in two storage orders.

At 10M rows (``WAP_BENCH_CHANGES_ROWS`` to change it), in a DuckDB file in a temporary directory, production ``t``
(ids 0 .. n-1, the five columns of ``bench/diff.py``'s ``table_rows``) and a new build of it per case:

- daily: a day's load: 1% of rows appended with new keys, 0.1% of existing rows corrected, all in the most recent 2%
  of keys;
- scattered: 0.01% of rows corrected, spread uniformly over the keys;
- worst: 5% changed, 1% added, 0.5% removed, spread uniformly (``bench/diff.py``'s changed pair);
- unchanged: the same rows.

Each pair is stored twice: in key order (as a table built by appending in key order), and in no order (the rows
shuffled by a hash). The floor is one scan of both tables computing count and an order-independent hash of every
row; the report is ``DiffEngine(...).diff()`` with the key ``id``, on a fresh read-only connection. After an untimed
warm-up call of each, ``REPEATS`` rounds, each report right after a floor of its pair; a ratio is the median over
rounds of the report's time over the floor's just before it. Printed per case: the ratio, the bucket count, how many
buckets differed and whether the join was restricted to them, the statement count, and whether the report equals
the one made without buckets (per-side pass and one join), which is computed once per case, untimed.
Targets (printed, not enforced): daily and scattered <= 2x, worst <= 4x, unchanged <= 1.5x.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
from diff import floor_scan, table_rows  # bench/diff.py, beside this script

from wap.audit.dialect import DIALECTS
from wap.audit.engine import DiffEngine

REPEATS = 7
THREADS = 2
ROWS = int(os.environ.get("WAP_BENCH_CHANGES_ROWS", "10000000"))
TARGETS = {"daily": 2.0, "scattered": 2.0, "worst": 4.0, "unchanged": 1.5}


def _cases(n: int) -> dict[str, str]:
    """Per case, the new build as a query over production ``p.t``."""
    recent = n - n // 50
    return {
        "daily": (
            f"select id, case when id >= {recent} and id % 20 = 3 then a + 1 else a end as a, b, c, d from p.t "
            f"union all {table_rows(n, n // 100)}"
        ),
        "scattered": "select id, case when id % 10000 = 7 then a + 1 else a end as a, b, c, d from p.t",
        "worst": (
            "select id, case when id % 20 = 1 then a + 1 else a end as a, b, "
            "case when id % 40 = 1 then c || '*' else c end as c, d from p.t where id % 200 <> 0 "
            f"union all {table_rows(n, n // 100)}"
        ),
        "unchanged": "select * from p.t",
    }


def _expected(case: str, n: int) -> dict[str, int]:
    return {
        "daily": {"added": n // 100, "removed": 0, "changed": n // 1000},
        "scattered": {"added": 0, "removed": 0, "changed": n // 10000},
        "worst": {"added": n // 100, "removed": n // 200, "changed": n // 20},
        "unchanged": {"added": 0, "removed": 0, "changed": 0},
    }[case]


def _build(conn: duckdb.DuckDBPyConnection, n: int) -> None:
    conn.execute("create schema p")
    conn.execute(f"create table p.t as {table_rows(0, n)}")
    conn.execute("create schema p_shuffled")
    conn.execute("create table p_shuffled.t as select * from p.t order by hash(id, 9)")
    for case, query in _cases(n).items():
        conn.execute(f"create schema {case}")
        conn.execute(f"create table {case}.t as {query}")
        conn.execute(f"create schema {case}_shuffled")
        conn.execute(f"create table {case}_shuffled.t as select * from {case}.t order by hash(id, 9)")
        conn.execute("checkpoint")


class _Report:
    def __init__(self, conn: duckdb.DuckDBPyConnection, write_schema: str, prod_schema: str, **options: Any) -> None:
        self.conn, self.write_schema, self.prod_schema, self.options = conn, write_schema, prod_schema, options
        self.statements = 0
        self.bucket_stats: tuple[int, int, str] | None = None

    def run(self) -> list[dict[str, Any]]:
        count = 0

        def query(sql: str, params: Sequence[Any]) -> list[tuple]:
            nonlocal count
            count += 1
            return self.conn.execute(sql, params).fetchall()

        engine = DiffEngine(
            query, DIALECTS["duckdb"], self.write_schema, self.prod_schema, keys={"t": ["id"]}, **self.options
        )
        entries = engine.diff()
        self.statements, self.bucket_stats = count, engine.bucket_stats.get("t")
        return entries


def _timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def bench_changes(n: int = ROWS) -> None:
    with tempfile.TemporaryDirectory(prefix="wap-bench-changes-") as folder:
        path = str(Path(folder) / "bench.duckdb")
        conn = duckdb.connect(path)
        conn.execute(f"set threads = {THREADS}")
        conn.execute("set enable_progress_bar = false")
        started = time.perf_counter()
        _build(conn, n)
        built = time.perf_counter() - started
        conn.close()
        conn = duckdb.connect(path, read_only=True)
        conn.execute(f"set threads = {THREADS}")
        conn.execute("set enable_progress_bar = false")
        try:
            pairs = [
                (case, order, f"{case}{suffix}", f"p{suffix}")
                for case in _cases(n)
                for order, suffix in (("key order", ""), ("no order", "_shuffled"))
            ]
            reports = {(case, order): _Report(conn, new, old) for case, order, new, old in pairs}
            floors = {(case, order): floor_scan(conn, [f"{old}.t", f"{new}.t"]) for case, order, new, old in pairs}
            for name in reports:  # warm-up
                floors[name]()
                reports[name].run()
            seconds: dict[tuple[str, str], list[tuple[float, float]]] = {name: [] for name in reports}
            for _ in range(REPEATS):
                for name in reports:
                    floor = _timed(floors[name])
                    seconds[name].append((_timed(reports[name].run), floor))
            print(f"changes  {n:,} rows a table (built in {built:.0f} s); ratio = median of {REPEATS} paired rounds")
            for (case, order), report in reports.items():
                (entry,) = report.run()
                plain_report = _Report(conn, f"{case}{'_shuffled' if order == 'no order' else ''}", "p", bucket_rows=0)
                (plain,) = plain_report.run()
                rows = {kind: entry["rows"][kind] for kind in ("added", "removed", "changed")}
                ratio = statistics.median(a / b for a, b in seconds[(case, order)])
                best = min(a for a, _ in seconds[(case, order)])
                floor = min(b for _, b in seconds[(case, order)])
                count, joined, how = report.bucket_stats or (0, 0, "no buckets")
                verdict = "OK" if ratio <= TARGETS[case] else "OVER"
                print(
                    f"changes  {case:>9}, {order:>9}: {ratio:5.2f}x floor {verdict} (<= {TARGETS[case]:g}x; report "
                    f"{best:.2f} s, floor {floor:.2f} s); {count:,} buckets, {joined:,} differ, join {how}; "
                    f"{report.statements} statements; rows {rows} "
                    f"{'as built' if rows == _expected(case, n) else 'NOT AS BUILT ' + str(_expected(case, n))}; "
                    f"{'same report as one join' if entry == plain else 'REPORT DIFFERS FROM ONE JOIN'}"
                )
        finally:
            conn.close()


if __name__ == "__main__":
    bench_changes()
