"""The publish section of `make bench`: the guarded swap on the embedded warehouse at 1M and 10M rows.

For each size, in a DuckDB file in a temporary directory: ``develop_dwh.t`` (the audited build, with its
marker) and ``dwh.t`` (production), 5 columns each. Timed: ``DuckDBWarehouse.publish`` (guards: markers and a
recomputed count + content hash of the build; then the emulated swap in one transaction), against the floor:
one scan of both tables computing count and an order-independent hash. Printed: seconds, the ratio, and the
seconds per million rows, to show whether publish is flat or data-proportional here.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import duckdb
from diff import table_rows  # bench/diff.py: the same 5-column rows

SIZES = (1_000_000, 10_000_000)


def _prepare(path: Path, n: int) -> None:
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema develop_dwh; create schema dwh")
        conn.execute(f"create table dwh.t as {table_rows(0, n)}")
        conn.execute(f"create table develop_dwh.t as {table_rows(0, n - n // 200)} union all {table_rows(n, n // 100)}")


def _bench_size(n: int) -> tuple[float, float]:
    from wap.audit.dialect import DIALECTS
    from wap.audit.marker import current_fingerprints, write_marker
    from wap.config import load_config
    from wap.publish.duckdb import DuckDBPublisher
    from wap.warehouse.duckdb import DuckDBWarehouse

    with tempfile.TemporaryDirectory(prefix="wap-bench-publish-") as folder:
        path = Path(folder) / "bench.duckdb"
        _prepare(path, n)
        warehouse = DuckDBWarehouse(load_config({"WAP_DUCKDB_PATH": str(path)}))
        with warehouse.session() as query:
            fingerprints = current_fingerprints(query, DIALECTS["duckdb"], "develop_dwh")
        write_marker(
            warehouse,
            run_id="bench",
            review_id="0123456789ab",
            fingerprints=[(k, c, h) for k, (c, h) in fingerprints.items()],
        )
        with duckdb.connect(str(path), read_only=True) as conn:
            started = time.perf_counter()
            for table in ("dwh.t", "develop_dwh.t"):
                conn.execute(f"select count(*), sum(hash(id, a, b, c, d)) from {table}").fetchall()
            floor = time.perf_counter() - started
        started = time.perf_counter()
        result = DuckDBPublisher(warehouse).publish(run_id="bench", review_id="0123456789ab")
        seconds = time.perf_counter() - started
        assert result.outcome == "published", result
        started = time.perf_counter()
        again = DuckDBPublisher(warehouse).publish(run_id="bench", review_id="0123456789ab")
        retry = time.perf_counter() - started
        assert again.outcome == "already published", again
    label = f"{n // 1_000_000}M"
    print(
        f"publish {label:>3} rows   floor {floor:.2f} s   publish {seconds:.2f} s = {seconds / floor:.1f}x floor   "
        f"({seconds / (n / 1e6):.2f} s per million rows)   retry (no-op) {retry:.2f} s"
    )
    return floor, seconds


def bench_publish() -> None:
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    results = {n: _bench_size(n) for n in SIZES}
    (_, small), (_, large) = results[SIZES[0]], results[SIZES[-1]]
    print(
        f"publish 10M / 1M time: {large / small:.1f}x for 10x the rows: data-proportional on the embedded warehouse "
        "(DuckDB cannot rename a schema or move a table, so the swap copies both schemas in one transaction; "
        "on Snowflake ALTER SCHEMA ... SWAP WITH is metadata-only)"
    )


if __name__ == "__main__":
    bench_publish()
