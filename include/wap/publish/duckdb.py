"""Publish on the embedded warehouse: the swap of the write schema with production, emulated in one transaction.

DuckDB cannot rename a schema or move a table between schemas: production's relations go to a scratch schema,
the write schema's to production, the scratch ones to the write schema. The guards (:mod:`wap.publish.guards`)
run in the same transaction, first; any failure rolls everything back, so both schemas stay exactly as they were.
The copy makes it data-proportional here; on Snowflake the swap is a metadata operation.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from wap.audit.dialect import DIALECTS, quote
from wap.audit.marker import Marker, current_fingerprints, write_duckdb_marker
from wap.config import WapError
from wap.publish.guards import (
    PUBLISHED_TABLE,
    PublishResult,
    RollbackResult,
    check_after_swap,
    check_before_rollback,
    check_before_swap,
    read_marker,
)
from wap.warehouse.duckdb import query_of

if TYPE_CHECKING:
    import duckdb

    from wap.warehouse import Query
    from wap.warehouse.duckdb import DuckDBWarehouse

log = logging.getLogger(__name__)

SCRATCH_SCHEMA = "_wap_swap"
dialect = DIALECTS["duckdb"]


class DuckDBPublisher:
    """Publish and rollback on the DuckDB file of ``warehouse``."""

    def __init__(self, warehouse: DuckDBWarehouse) -> None:
        self.warehouse = warehouse
        self.config = warehouse.config

    def publish(self, *, run_id: str, review_id: str, fault: Callable[[str], None] | None = None) -> PublishResult:
        """Swap the write schema with production, guarded, atomically. ``fault`` (tests) is called after each step
        with its name."""
        write, prod = self.config.write_schema, self.config.prod_schema
        with self.warehouse.transaction() as conn:
            query = query_of(conn)
            already, previous = check_before_swap(
                query, dialect, write_schema=write, prod_schema=prod, run_id=run_id, review_id=review_id
            )
            if already:  # nothing was written: the transaction commits nothing
                return PublishResult("already published", run_id, review_id, None, [])
            if previous is None:
                previous = self._mark_unaudited_production(conn, query)
            moved = _swap(conn, write, prod, fault or (lambda step: None))
            check_after_swap(query, dialect, write_schema=write, prod_schema=prod, run_id=run_id, previous=previous)
            self._record_publish(conn, run_id, review_id, previous.run_id if previous else None)
        log.info("Published run %s (review %s): %s now holds %s", run_id, review_id, prod, ", ".join(moved))
        return PublishResult("published", run_id, review_id, previous.run_id if previous else None, moved)

    def rollback(self, *, fault: Callable[[str], None] | None = None) -> RollbackResult:
        """Swap back, if the write schema still holds (unchanged) the production the last publish replaced.

        Returns what it put back (the run production goes back to, the run it held, each relation's status).
        Same atomic emulation as publish.
        """
        write, prod = self.config.write_schema, self.config.prod_schema
        with self.warehouse.transaction() as conn:
            query = query_of(conn)
            result = check_before_rollback(query, dialect, write_schema=write, prod_schema=prod)
            _swap(conn, write, prod, fault or (lambda step: None))
        log.info("Rolled back: %s", result.describe(prod, write))
        return result

    def _mark_unaudited_production(self, conn: duckdb.DuckDBPyConnection, query: Query) -> Marker | None:
        """Production built outside WAP has no marker: fingerprint it as run ``before-wap``, so that a rollback can
        tell it is still unchanged in the write schema. None when there is no production yet."""
        prod = self.config.prod_schema
        fingerprints = current_fingerprints(query, dialect, prod) if _schema_exists(conn, prod) else {}
        if not fingerprints:
            return None
        rows = [("*", None, None)] + [(name, count, digest) for name, (count, digest) in fingerprints.items()]
        write_duckdb_marker(conn, prod, "before-wap", "-", rows)
        return read_marker(query, dialect, prod)

    def _record_publish(
        self, conn: duckdb.DuckDBPyConnection, run_id: str, review_id: str, replaced: str | None
    ) -> None:
        table = f"{quote(self.config.prod_schema)}.{quote(PUBLISHED_TABLE)}"
        conn.execute(
            f"create or replace table {table} as select ?::varchar as run_id, ?::varchar as review_id, "
            "?::varchar as replaced_run_id, current_timestamp as published_at",
            [run_id, review_id, replaced],
        )


def _schema_exists(conn: duckdb.DuckDBPyConnection, schema: str) -> bool:
    found = conn.execute(
        "select count(*) from duckdb_schemas() where database_name = current_database() and schema_name = ?",
        [schema],
    ).fetchone()
    return bool(found and found[0])


def _swap(conn: duckdb.DuckDBPyConnection, write: str, prod: str, fault: Callable[[str], None]) -> list[str]:
    conn.execute(f"create schema if not exists {quote(prod)}")
    conn.execute(f"create schema {quote(SCRATCH_SCHEMA)}")
    fault("scratch schema")
    _move_all(conn, prod, SCRATCH_SCHEMA, fault)
    moved = _move_all(conn, write, prod, fault)
    _move_all(conn, SCRATCH_SCHEMA, write, fault)
    conn.execute(f"drop schema {quote(SCRATCH_SCHEMA)}")
    fault("done")
    return sorted(name for name in moved if not name.startswith("_wap_"))


def _move_all(conn: duckdb.DuckDBPyConnection, source: str, target: str, fault: Callable[[str], None]) -> list[str]:
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
    bodies = {name: _view_body(sql, source, name) for name, sql in views}
    for name in _dependencies_first(bodies):
        conn.execute(f"create view {quote(target)}.{quote(name)} as {bodies[name]}")
        conn.execute(f"drop view {quote(source)}.{quote(name)}")
        fault(f"view {source}.{name}")
    return tables + [name for name, _ in views]


def _dependencies_first(bodies: dict[str, str]) -> list[str]:
    """The views in an order in which each comes after the views of the same schema its query names (DuckDB binds
    a view's names when it is created, and a view built by the bundle names its neighbours relatively). A name
    that only looks like a dependency (a column called like a view) costs nothing but order; should the guesses
    form a cycle, the rest keep their catalog order."""
    mentions = {
        name: {
            other
            for other in bodies
            if other != name and re.search(rf'(?<![\w$."]){re.escape(other)}(?![\w$])|"{re.escape(other)}"', body, re.I)
        }
        for name, body in bodies.items()
    }
    ordered: list[str] = []
    while len(ordered) < len(bodies):
        ready = [name for name in bodies if name not in ordered and mentions[name] <= set(ordered)]
        ordered += ready or [name for name in bodies if name not in ordered]
    return ordered


def _view_body(sql: str, schema: str, name: str) -> str:
    """The query of a view from DuckDB's ``CREATE VIEW <schema>.<name> AS <query>;``."""
    for rendered_schema in (schema, quote(schema)):
        for rendered_name in (name, quote(name)):
            prefix = f"CREATE VIEW {rendered_schema}.{rendered_name} AS "
            if sql.startswith(prefix):
                return sql[len(prefix) :].rstrip().rstrip(";")
    raise WapError(f"cannot read the definition of view {schema}.{name} to move it: {sql[:200]!r}")
