"""The embedded warehouse: one DuckDB file, opened through the Apache DuckDB provider's hook."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from wap.config import WapError, validate_identifier
from wap.diff.dialect import DIALECTS, quote
from wap.landing import COLUMNS, LandingRow

if TYPE_CHECKING:
    import duckdb

    from wap.config import WapConfig
    from wap.diff.engine import Query
    from wap.publish import Marker, PublishResult

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

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A writing connection in one transaction: committed on exit, rolled back on any error."""
        with self.connect() as conn:
            conn.execute("begin transaction")
            try:
                yield conn
            except BaseException:
                conn.execute("rollback")
                raise
            conn.execute("commit")

    def write_marker(self, *, run_id: str, review_id: str, fingerprints: Iterable[tuple[str, int, str | None]]) -> None:
        """Record in the write schema which run built it and which review audited it, with each relation's
        row count and content hash as the report recorded them (publish re-checks them)."""
        with self.transaction() as conn:
            self._write_marker(conn, self.config.write_schema, run_id, review_id, fingerprints)

    @staticmethod
    def _write_marker(
        conn: duckdb.DuckDBPyConnection,
        schema: str,
        run_id: str,
        review_id: str,
        fingerprints: Iterable[tuple[str, int | None, str | None]],
    ) -> None:
        from wap.audit import MARKER_TABLE

        table = f"{quote(schema)}.{quote(MARKER_TABLE)}"
        conn.execute(
            f"create or replace table {table} (run_id varchar not null, review_id varchar not null, "
            "relation varchar not null, row_count bigint, content_hash varchar, "
            "written_at timestamp default current_timestamp)"
        )
        conn.executemany(
            f"insert into {table} (run_id, review_id, relation, row_count, content_hash) values (?, ?, ?, ?, ?)",
            [[run_id, review_id, name, count, content_hash] for name, count, content_hash in fingerprints],
        )

    def publish(self, *, run_id: str, review_id: str, fault: Callable[[str], None] | None = None) -> PublishResult:
        """Swap the write schema with production, emulated in one transaction (DuckDB cannot rename a schema
        or move a table between schemas): production's relations go to a scratch schema, the write schema's
        to production, the scratch ones to the write schema. The guards run in the same transaction, first;
        any failure rolls everything back, so both schemas stay exactly as they were. ``fault`` (tests) is
        called after each step with its name.

        The copy makes it data-proportional here; on Snowflake the swap is a metadata operation.
        """
        from wap.publish import PublishResult, check_after_swap, check_before_swap

        write, prod = self.config.write_schema, self.config.prod_schema
        with self.transaction() as conn:
            query = self._query(conn)
            already, previous = check_before_swap(
                query, self.dialect, write_schema=write, prod_schema=prod, run_id=run_id, review_id=review_id
            )
            if already:  # nothing was written: the transaction commits nothing
                return PublishResult("already published", run_id, review_id, None, [])
            if previous is None:
                previous = self._mark_unaudited_production(conn, query)
            moved = self._swap(conn, write, prod, fault or (lambda step: None))
            check_after_swap(
                query, self.dialect, write_schema=write, prod_schema=prod, run_id=run_id, previous=previous
            )
            self._record_publish(conn, run_id, review_id, previous.run_id if previous else None)
        log.info("Published run %s (review %s): %s now holds %s", run_id, review_id, prod, ", ".join(moved))
        return PublishResult("published", run_id, review_id, previous.run_id if previous else None, moved)

    def rollback(self, *, fault: Callable[[str], None] | None = None) -> tuple[str, str]:
        """Swap back, if the write schema still holds (unchanged) the production the last publish replaced.

        Returns (the run id production goes back to, the run id it held). Same atomic emulation as publish.
        """
        from wap.publish import check_before_rollback, read_published

        write, prod = self.config.write_schema, self.config.prod_schema
        with self.transaction() as conn:
            query = self._query(conn)
            restored = check_before_rollback(query, self.dialect, write_schema=write, prod_schema=prod)
            (withdrawn, _, _) = read_published(query, self.dialect, prod)
            self._swap(conn, write, prod, fault or (lambda step: None))
        log.info("Rolled back: %s holds run %s again (run %s is in %s)", prod, restored, withdrawn, write)
        return restored, withdrawn

    def _mark_unaudited_production(self, conn: duckdb.DuckDBPyConnection, query: Query) -> Marker | None:
        """Production built outside WAP has no marker: fingerprint it as run ``before-wap``, so that a rollback can
        tell it is still unchanged in the write schema. None when there is no production yet."""
        from wap.publish import current_fingerprints, read_marker

        prod = self.config.prod_schema
        fingerprints = current_fingerprints(query, self.dialect, prod) if self._schema_exists(conn, prod) else {}
        if not fingerprints:
            return None
        rows = [("*", None, None)] + [(name, count, digest) for name, (count, digest) in fingerprints.items()]
        self._write_marker(conn, prod, "before-wap", "-", rows)
        return read_marker(query, self.dialect, prod)

    @staticmethod
    def _schema_exists(conn: duckdb.DuckDBPyConnection, schema: str) -> bool:
        found = conn.execute(
            "select count(*) from duckdb_schemas() where database_name = current_database() and schema_name = ?",
            [schema],
        ).fetchone()
        return bool(found and found[0])

    def _record_publish(
        self, conn: duckdb.DuckDBPyConnection, run_id: str, review_id: str, replaced: str | None
    ) -> None:
        from wap.publish import PUBLISHED_TABLE

        table = f"{quote(self.config.prod_schema)}.{quote(PUBLISHED_TABLE)}"
        conn.execute(
            f"create or replace table {table} as select ?::varchar as run_id, ?::varchar as review_id, "
            "?::varchar as replaced_run_id, current_timestamp as published_at",
            [run_id, review_id, replaced],
        )

    @staticmethod
    def _query(conn: duckdb.DuckDBPyConnection) -> Query:
        return lambda sql, params: conn.execute(sql, list(params)).fetchall()

    def _swap(self, conn: duckdb.DuckDBPyConnection, write: str, prod: str, fault: Callable[[str], None]) -> list[str]:
        scratch = "_wap_swap"
        conn.execute(f"create schema if not exists {quote(prod)}")
        conn.execute(f"create schema {quote(scratch)}")
        fault("scratch schema")
        self._move_all(conn, prod, scratch, fault)
        moved = self._move_all(conn, write, prod, fault)
        self._move_all(conn, scratch, write, fault)
        conn.execute(f"drop schema {quote(scratch)}")
        fault("done")
        return sorted(name for name in moved if not name.startswith("_wap_"))

    def _move_all(
        self, conn: duckdb.DuckDBPyConnection, source: str, target: str, fault: Callable[[str], None]
    ) -> list[str]:
        """Copy every table and view of ``source`` into ``target`` (same names), then drop them from ``source``."""
        tables = [
            name
            for (name,) in conn.execute(
                "select table_name from duckdb_tables() where database_name = current_database() "
                "and schema_name = ? and not temporary",
                [source],
            ).fetchall()
        ]
        views = conn.execute(
            "select view_name, sql from duckdb_views() where database_name = current_database() "
            "and schema_name = ? and not internal and not temporary",
            [source],
        ).fetchall()
        for name in tables:
            conn.execute(f"create table {quote(target)}.{quote(name)} as select * from {quote(source)}.{quote(name)}")
            conn.execute(f"drop table {quote(source)}.{quote(name)}")
            fault(f"table {source}.{name}")
        for name, sql in views:
            conn.execute(f"create view {quote(target)}.{quote(name)} as {_view_body(sql, source, name)}")
            conn.execute(f"drop view {quote(source)}.{quote(name)}")
            fault(f"view {source}.{name}")
        return tables + [name for name, _ in views]

    def load_landing(self, rows: Iterable[LandingRow]) -> int:
        """Insert ``rows`` into ``ssb.befolkning_sysselsetting``, replacing the years they cover.

        Loading a year again replaces it (idempotent). Returns the number of rows written.
        """
        rows = list(rows)
        years = sorted({row.tid for row in rows})
        table = f"{LANDING_SCHEMA}.{LANDING_TABLE}"
        with self.transaction() as conn:
            conn.execute(f"create schema if not exists {LANDING_SCHEMA}")
            conn.execute(
                f"create table if not exists {table} (region varchar not null, kjonn varchar not null, "
                "alder varchar not null, contentscode varchar not null, tid varchar not null, value bigint)"
            )
            conn.executemany(f"delete from {table} where tid = ?", [[year] for year in years])
            conn.executemany(f"insert into {table} ({', '.join(COLUMNS)}) values (?, ?, ?, ?, ?, ?)", rows)
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


def _view_body(sql: str, schema: str, name: str) -> str:
    """The query of a view from DuckDB's ``CREATE VIEW <schema>.<name> AS <query>;``."""
    for rendered_schema in (schema, quote(schema)):
        for rendered_name in (name, quote(name)):
            prefix = f"CREATE VIEW {rendered_schema}.{rendered_name} AS "
            if sql.startswith(prefix):
                return sql[len(prefix) :].rstrip().rstrip(";")
    raise WapError(f"cannot read the definition of view {schema}.{name} to move it: {sql[:200]!r}")
