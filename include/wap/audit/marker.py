"""The audit marker: which run built the write schema, which review audited it, and each relation's row count
and content hash as the report recorded them. The audit writes it; publish and rollback re-check it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wap.audit.dialect import Dialect, SnowflakeDialect, quote
from wap.audit.engine import read_catalog
from wap.config import WapError

if TYPE_CHECKING:
    import duckdb

    from wap.warehouse import Query

log = logging.getLogger(__name__)

#: Relations of the bundle's own in the write schema; never part of the diff.
MARKER_TABLE = "_wap_marker"
INTERNAL_PREFIX = "_wap_"

#: The marker's columns (those of the DuckDB table's) over ``VALUES`` rows; ``SYSDATE()`` is UTC, TIMESTAMP_NTZ.
SNOWFLAKE_MARKER_SELECT = (
    "column1::varchar as run_id, column2::varchar as review_id, column3::varchar as relation, "
    "column4::bigint as row_count, column5::varchar as content_hash, sysdate() as written_at"
)

#: (relation, row count, content hash); the build as a whole is the row ``("*", None, None)``.
Fingerprint = tuple[str, "int | None", "str | None"]


class MarkerError(WapError):
    """A marker that cannot be trusted (edited by hand); nothing may be published from it."""


@dataclass(frozen=True)
class Marker:
    run_id: str
    review_id: str
    fingerprints: dict[str, tuple[int | None, str | None]]  # relation (lower case) -> (row count, content hash)


def write_marker(warehouse: Any, *, run_id: str, review_id: str, fingerprints: Iterable[Fingerprint]) -> None:
    """Record the marker in the configured write schema of ``warehouse`` (a :mod:`wap.warehouse` connection)."""
    schema = warehouse.config.write_schema
    if warehouse.kind == "duckdb":
        with warehouse.transaction() as conn:
            write_duckdb_marker(conn, schema, run_id, review_id, fingerprints)
        return
    rows = [(run_id, review_id, name, count, content_hash) for name, count, content_hash in fingerprints]
    if not rows:
        raise ValueError("write_marker needs at least one fingerprint (the build's '*' row)")
    # One ``CREATE OR REPLACE TABLE ... AS SELECT``: on Snowflake a DDL statement commits any open transaction,
    # so the table and its rows are written by one statement, atomically. (CTAS takes no NOT NULL constraints;
    # every value comes from the audit.)
    marks = ", ".join("(%s, %s, %s, %s, %s)" for _ in rows)
    sql = (
        f"create or replace table {SnowflakeDialect.qualified(warehouse.database, schema, MARKER_TABLE)} as "
        f"select {SNOWFLAKE_MARKER_SELECT} from values {marks}"
    )
    with warehouse.session() as query:
        query(sql, [value for row in rows for value in row])
    log.info("Wrote the marker of run %s (review %s) into %s", run_id, review_id, schema)


def write_duckdb_marker(
    conn: duckdb.DuckDBPyConnection, schema: str, run_id: str, review_id: str, fingerprints: Iterable[Fingerprint]
) -> None:
    """The marker in ``schema`` on an open DuckDB connection (inside the caller's transaction)."""
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


def read_marker(query: Query, dialect: Dialect, schema: str) -> Marker | None:
    """The audit marker in ``schema``; None if there is none. Refuses a marker naming several runs."""
    catalog = read_catalog(query, dialect, [schema])[schema]
    if MARKER_TABLE not in catalog:
        return None
    table = dialect.relation(schema, catalog[MARKER_TABLE].name)  # Snowflake spells it _WAP_MARKER
    rows = query(f"select run_id, review_id, relation, row_count, content_hash from {table}", [])
    if not rows:
        return None
    runs = {(row[0], row[1]) for row in rows}
    if len(runs) != 1:
        raise MarkerError(f"the marker in {schema} names several runs {sorted(runs)}: it was edited; refusing")
    ((run_id, review_id),) = runs
    fingerprints = {
        str(row[2]).lower(): (None if row[3] is None else int(row[3]), row[4]) for row in rows if row[2] != "*"
    }
    return Marker(run_id, review_id, fingerprints)


def current_fingerprints(query: Query, dialect: Dialect, schema: str) -> dict[str, tuple[int, str | None]]:
    """Row count and content hash (the audit's formula) of every relation of ``schema`` but the bundle's own."""
    fingerprints = {}
    for lower, relation in read_catalog(query, dialect, [schema])[schema].items():
        if lower.startswith(INTERNAL_PREFIX):
            continue
        columns = sorted(relation.column_types)
        ((count, content_hash),) = query(
            f"select count(*), {dialect.content_hash(columns)} from {dialect.relation(schema, relation.name)}", []
        )
        fingerprints[lower] = (int(count), content_hash)
    return fingerprints
