"""The embedded warehouse: one DuckDB file, opened through the Apache DuckDB provider's hook."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from wap.config import validate_identifier
from wap.diff.dialect import DIALECTS, quote
from wap.landing import COLUMNS, LandingRow

if TYPE_CHECKING:
    import duckdb

    from wap.config import WapConfig
    from wap.diff.engine import Query

log = logging.getLogger(__name__)

LANDING_SCHEMA = "ssb"
LANDING_TABLE = "befolkning_sysselsetting"


class DuckDBWarehouse:
    """The DuckDB file named by ``WAP_DUCKDB_PATH``; ``duckdb_default`` supplies options (memory, threads)."""

    dialect = DIALECTS["duckdb"]

    def __init__(self, config: WapConfig) -> None:
        self.config = config

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the warehouse file, closed on exit. DuckDB allows one writing process."""
        from airflow.providers.duckdb.hooks.duckdb import DuckDBHook

        path = self.config.duckdb_path
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        hook = DuckDBHook(duckdb_conn_id=self.config.duckdb_conn_id, database=str(path), read_only=read_only)
        conn = hook.get_conn()
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def session(self, *, read_only: bool = False) -> Iterator[Query]:
        """A :data:`~wap.diff.engine.Query` on one connection: run a statement with bound values, get all rows."""
        with self.connect(read_only=read_only) as conn:
            yield lambda sql, params: conn.execute(sql, list(params)).fetchall()

    def write_marker(self, *, run_id: str, review_id: str, fingerprints: Iterable[tuple[str, int, str | None]]) -> None:
        """Record in the write schema which run built it and which review audited it, with each relation's
        row count and content hash as the report recorded them (publish re-checks them)."""
        from wap.audit import MARKER_TABLE

        table = f"{quote(self.config.write_schema)}.{quote(MARKER_TABLE)}"
        with self.connect() as conn:
            conn.execute("begin transaction")
            conn.execute(
                f"create or replace table {table} (run_id varchar not null, review_id varchar not null, "
                "relation varchar not null, row_count bigint, content_hash varchar, "
                "written_at timestamp default current_timestamp)"
            )
            conn.executemany(
                f"insert into {table} (run_id, review_id, relation, row_count, content_hash) values (?, ?, ?, ?, ?)",
                [[run_id, review_id, name, count, content_hash] for name, count, content_hash in fingerprints],
            )
            conn.execute("commit")

    def load_landing(self, rows: Iterable[LandingRow]) -> int:
        """Insert ``rows`` into ``ssb.befolkning_sysselsetting``, replacing the years they cover.

        Loading a year again replaces it (idempotent). Returns the number of rows written.
        """
        rows = list(rows)
        years = sorted({row.tid for row in rows})
        table = f"{LANDING_SCHEMA}.{LANDING_TABLE}"
        with self.connect() as conn:
            conn.execute("begin transaction")
            conn.execute(f"create schema if not exists {LANDING_SCHEMA}")
            conn.execute(
                f"create table if not exists {table} (region varchar not null, kjonn varchar not null, "
                "alder varchar not null, contentscode varchar not null, tid varchar not null, value bigint)"
            )
            conn.executemany(f"delete from {table} where tid = ?", [[year] for year in years])
            conn.executemany(f"insert into {table} ({', '.join(COLUMNS)}) values (?, ?, ?, ?, ?, ?)", rows)
            conn.execute("commit")
        log.info("Loaded %d landing rows for %s into %s", len(rows), ", ".join(years), table)
        return len(rows)

    def period_counts(self, schema: str, table: str, period_column: str) -> list[tuple[object, int]]:
        """Rows per value of ``period_column`` in ``schema.table``, in order; empty if the table is missing."""
        for value, name in ((schema, "schema"), (table, "table"), (period_column, "column")):
            validate_identifier(value, name)
        if not self.config.duckdb_path.exists():
            return []
        with self.connect(read_only=True) as conn:
            exists = conn.execute(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                [schema, table],
            ).fetchone()
            if not exists or not exists[0]:
                return []
            return conn.execute(
                f"select {period_column}, count(*) from {schema}.{table} group by 1 order by 1"
            ).fetchall()
