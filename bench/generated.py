"""The scale section of `make bench`: a generated dbt project of 300 models, against the demo project.

The project (written into a temporary directory, never into the repository): one seed of 1,000 rows, then 30
chains of 10 models each, alternating views and tables (``g<chain>_<step>``, each selecting from the previous
one), every table with a ``unique`` test on its key. It is prepared as a team's project is (`wap dbt prepare`:
the prepared copy, the bundle's profile, the manifest).

- parse: ``dags/wap_dwh.py`` rendered from that project's manifest, cold and warm (as for the demo, in
  ``bench/run.py``), against the same DAG file rendered from the demo project;
- audit: the project built into the write schema, production made equal to it, then the audit's diff report of
  the 300 unchanged relations (plus the seed): after an untimed first call (which pays the audit's imports), the
  median over paired rounds of its wall time over the floor's just before it, and the number of warehouse
  statements it sent.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHAINS, STEPS, SEED_ROWS = 30, 10, 1000
#: Paired rounds (the floor, then the audit) after an untimed first audit; the ratio is their median.
AUDIT_ROUNDS = 5


def generate_project(folder: Path) -> Path:
    """Write the generated project into ``folder``; returns its directory."""
    project = folder / "generated"
    (project / "models").mkdir(parents=True)
    (project / "seeds").mkdir()
    (project / "dbt_project.yml").write_text(
        "name: generated\nversion: '1.0'\nconfig-version: 2\nprofile: generated\n"
        "seeds:\n  generated:\n    +meta: {wap: {primary_key: [id]}}\n"
    )
    rows = "\n".join(f"{i},{i % 97},2024-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(SEED_ROWS))
    (project / "seeds" / "seed_base.csv").write_text(f"id,v,d\n{rows}\n")
    tests = ["version: 2", "models:"]
    for chain in range(CHAINS):
        previous = "seed_base"
        for step in range(STEPS):
            name = f"g{chain:02d}_{step}"
            kind = "view" if step % 2 == 0 else "table"
            (project / "models" / f"{name}.sql").write_text(
                f"{{{{ config(materialized='{kind}') }}}}\n"
                f"select id, v + {step} as v, d from {{{{ ref('{previous}') }}}}\n"
            )
            if kind == "table":
                tests += [f"  - name: {name}", "    columns:", "      - name: id", "        data_tests: [unique]"]
            previous = name
    (project / "models" / "schema.yml").write_text("\n".join(tests) + "\n")
    return project


def _floor(config: Any, names: list[str]) -> tuple[float, int]:
    """One scan of each side of each relation, as the audit opens the warehouse (a fresh read-only connection):
    ``count(*)`` and an order-independent hash of every column, one statement each; (seconds, statements)."""
    import duckdb

    with duckdb.connect(str(config.duckdb_path), read_only=True) as conn:
        scans = []
        for schema in (config.write_schema, config.prod_schema):
            for name in names:
                columns = [row[0] for row in conn.execute(f"describe {schema}.{name}").fetchall()]
                hashed = ", ".join(f'"{column}"' for column in sorted(columns))
                scans.append(f"select count(*), sum(hash({hashed})) from {schema}.{name}")
    started = time.perf_counter()
    with duckdb.connect(str(config.duckdb_path), read_only=True) as conn:
        for sql in scans:
            conn.execute(sql).fetchall()
    return time.perf_counter() - started, len(scans)


@contextmanager
def counted_statements() -> Iterator[list[tuple[float, str]]]:
    """Every statement the bundle's DuckDB sessions send while in the block, with its time."""
    import wap.warehouse.duckdb as duckdb_warehouse

    sent: list[tuple[float, str]] = []
    original = duckdb_warehouse.query_of

    def counting(conn: object) -> object:
        query = original(conn)  # type: ignore[arg-type]

        def run(sql: str, params: object) -> list[tuple]:
            started = time.perf_counter()
            rows = query(sql, params)  # type: ignore[arg-type]
            sent.append((time.perf_counter() - started, sql))
            return rows

        return run

    duckdb_warehouse.query_of = counting  # type: ignore[assignment]
    try:
        yield sent
    finally:
        duckdb_warehouse.query_of = original


def bench_generated() -> None:
    import duckdb
    from run import PROJECT_DIR, REPEATS, environment, parse_seconds  # bench/run.py

    from wap.audit.stage import diff_report
    from wap.config import load_config
    from wap.dbt.prepare import prepare, profiles_dir, run_dbt

    with tempfile.TemporaryDirectory(prefix="wap-bench-generated-") as folder:
        project = generate_project(Path(folder))
        env = {"WAP_DBT_PROJECT_DIR": str(project), "WAP_DUCKDB_PATH": str(Path(folder) / "warehouse.duckdb")}
        config = load_config(env)
        started = time.perf_counter()
        prepared = prepare(config)
        prepare_seconds = time.perf_counter() - started
        dag_file = PROJECT_DIR / "dags" / "wap_dwh.py"
        demo_cold, demo_tasks = parse_seconds(dag_file, "cold")
        demo_warm, _ = parse_seconds(dag_file, "warm")
        with environment(env):
            cold, tasks = parse_seconds(dag_file, "cold")
            warm, _ = parse_seconds(dag_file, "warm")
        print(f"scale  generated project: {CHAINS * STEPS} models, 1 seed; `wap dbt prepare` {prepare_seconds:.1f} s")
        demo_ms = f"{demo_cold * 1000:8.1f} / {demo_warm * 1000:.1f} ms"
        print(f"parse  demo      ({demo_tasks:3d} tasks), cold / warm   {demo_ms}  (median of {REPEATS})")
        print(f"parse  generated ({tasks:3d} tasks), cold / warm   {cold * 1000:8.1f} / {warm * 1000:.1f} ms")
        print(f"parse  ratio generated / demo, cold / warm   {cold / demo_cold:8.1f} x / {warm / demo_warm:.1f} x")

        started = time.perf_counter()
        run_dbt(config, prepared, "build", "--threads", "2", profiles=profiles_dir(config))
        build_seconds = time.perf_counter() - started
        with duckdb.connect(str(config.duckdb_path)) as conn:  # production: the same build
            conn.execute(f"create schema {config.prod_schema}")
            for (name,) in conn.execute(
                "select table_name from duckdb_tables() where schema_name = ?", [config.write_schema]
            ).fetchall():
                conn.execute(f"create table {config.prod_schema}.{name} as select * from {config.write_schema}.{name}")
            views = conn.execute(
                "select view_name, sql from duckdb_views() where schema_name = ? and not internal",
                [config.write_schema],
            ).fetchall()
            for name, sql in sorted(views, key=lambda view: view[0]):  # g<chain>_<step>: each after its source
                body = sql.split(" AS ", 1)[1].rstrip(";")
                conn.execute(f"create view {config.prod_schema}.{name} as {body}")
        started = time.perf_counter()
        report = diff_report(config, run_id="bench")  # untimed: the first imports the audit's modules
        first_seconds = time.perf_counter() - started
        names = [entry["name"] for entry in report["relations"]]
        rounds: list[tuple[float, float]] = []
        for _ in range(AUDIT_ROUNDS):  # paired rounds: a floor, then the audit
            floor_seconds, floor_statements = _floor(config, names)
            with counted_statements() as sent:
                started = time.perf_counter()
                report = diff_report(config, run_id="bench")
                rounds.append((time.perf_counter() - started, floor_seconds))
        ratio = statistics.median(audit / floor for audit, floor in rounds)
        audit_seconds = statistics.median(audit for audit, _ in rounds)
        floor_seconds = statistics.median(floor for _, floor in rounds)
        statuses = {entry["status"] for entry in report["relations"]}
        relations = len(report["relations"])
        print(f"scale  dbt build of the generated project (2 threads)     {build_seconds:8.1f} s")
        print(
            f"audit  {relations} unchanged relations ({', '.join(sorted(statuses))})   {audit_seconds:8.2f} s "
            f"(median of {AUDIT_ROUNDS} paired rounds; the first call, untimed: {first_seconds:.2f} s) "
            f"= {ratio:.2f}x their floor ({floor_seconds:.2f} s: {floor_statements} statements, a count + hash "
            f"scan of each side) {'OK' if ratio <= 2 else 'OVER'} (<= 2x); {len(sent)} warehouse statements "
            f"({len(sent) / relations:.2f} per relation; a constant number: tests/include/wap/audit/test_engine.py)"
        )
        in_warehouse = sum(seconds for seconds, _ in sent)
        print(
            f"audit    of which in the warehouse's statements {in_warehouse:.2f} s "
            f"= {in_warehouse / floor_seconds:.2f}x the floor; slowest: "
            + "; ".join(
                f"{seconds:.2f} s {' '.join(sql.split())[:90]}" for seconds, sql in sorted(sent, reverse=True)[:3]
            )
        )
