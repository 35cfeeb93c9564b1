"""Snowflake: the database named by ``WAP_DATABASE``, reached through the Snowflake provider's hook.

Both schemas live in that database. Configured names (database, schemas) are validated identifiers, resolved as
Snowflake resolves them unquoted (upper case), which is how dbt-snowflake creates them. Values are bound through
the connector's paramstyle, ``pyformat`` (``%s``), the one ``SnowflakeHook`` connections use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING, Any

from wap.config import ConfigError, validate_identifier
from wap.diff.dialect import DIALECTS, SnowflakeDialect

if TYPE_CHECKING:
    from snowflake.connector import SnowflakeConnection

    from wap.config import WapConfig
    from wap.diff.engine import Query
    from wap.publish import Marker

log = logging.getLogger(__name__)

#: The marker's columns (those of the DuckDB adapter's) over ``VALUES`` rows; ``SYSDATE()`` is UTC, TIMESTAMP_NTZ.
MARKER_SELECT = (
    "column1::varchar as run_id, column2::varchar as review_id, column3::varchar as relation, "
    "column4::bigint as row_count, column5::varchar as content_hash, sysdate() as written_at"
)


class SnowflakeWarehouse:
    """The database ``WAP_DATABASE`` on the account of the ``snowflake_default`` connection."""

    dialect = DIALECTS["snowflake"]

    def __init__(self, config: WapConfig) -> None:
        if config.snowflake_database is None:
            raise ConfigError("WAP_WAREHOUSE='snowflake' needs WAP_DATABASE, the database holding both schemas")
        self.config = config
        self.database = validate_identifier(config.snowflake_database, "WAP_DATABASE")

    def name(self, *identifiers: str) -> str:
        """``<db>.<identifiers...>``: each a configured identifier as Snowflake resolves it unquoted."""
        return ".".join(SnowflakeDialect.identifier(part) for part in (self.database, *identifiers))

    @contextmanager
    def connect(self) -> Iterator[SnowflakeConnection]:
        """A connection of ``snowflake_default`` with ``WAP_DATABASE`` as its database, closed on exit."""
        from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

        hook = SnowflakeHook(snowflake_conn_id=self.config.snowflake_conn_id, database=self.database)
        conn = hook.get_conn()
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def session(self, *, read_only: bool = False) -> Iterator[Query]:
        """A :data:`~wap.diff.engine.Query` on one connection: run a statement with bound values, get all rows.

        ``read_only`` is for the interface's sake: on Snowflake the role's grants decide what a session may write.
        """
        with self.connect() as conn, closing(conn.cursor()) as cursor:
            yield lambda sql, params: fetch_all(cursor, sql, params)

    def write_marker(self, *, run_id: str, review_id: str, fingerprints: Iterable[tuple[str, int, str | None]]) -> None:
        """Record in the write schema which run built it and which review audited it, with each relation's
        row count and content hash as the report recorded them (publish re-checks them).

        One ``CREATE OR REPLACE TABLE ... AS SELECT``: on Snowflake a DDL statement commits any open transaction,
        so the table and its rows are written by one statement, atomically. (CTAS takes no NOT NULL constraints;
        every value comes from the audit.)
        """
        from wap.audit import MARKER_TABLE

        rows = [(run_id, review_id, name, count, content_hash) for name, count, content_hash in fingerprints]
        if not rows:
            raise ValueError("write_marker needs at least one fingerprint (the build's '*' row)")
        marks = ", ".join("(%s, %s, %s, %s, %s)" for _ in rows)
        sql = (
            f"create or replace table {self.name(self.config.write_schema, MARKER_TABLE)} as "
            f"select {MARKER_SELECT} from values {marks}"
        )
        with self.session() as query:
            query(sql, [value for row in rows for value in row])
        log.info("Wrote the marker of run %s (review %s) into %s", run_id, review_id, self.config.write_schema)

    def period_counts(self, schema: str, table: str, period_column: str) -> list[tuple[object, int]]:
        """Rows per value of ``period_column`` in ``schema.table``, in order; empty if the table is missing."""
        for value, name in ((schema, "schema"), (table, "table"), (period_column, "column")):
            validate_identifier(value, name)
        with self.session(read_only=True) as query:
            exists = query(
                f"select count(*) from {self.name('information_schema', 'tables')} "
                "where table_schema = %s and table_name = %s",
                [schema.upper(), table.upper()],
            )
            if not exists or not exists[0][0]:
                return []
            column = SnowflakeDialect.identifier(period_column)
            return query(f"select {column}, count(*) from {self.name(schema, table)} group by 1 order by 1", [])

    # -- publish: the guards and the checks around the swap (the swap itself is SnowflakePublishOperator's) ------
    def swap_sql(self) -> str:
        """``ALTER SCHEMA <db>.<write> SWAP WITH <db>.<prod>``: atomic and metadata-only on Snowflake."""
        return f"ALTER SCHEMA {self.name(self.config.write_schema)} SWAP WITH {self.name(self.config.prod_schema)}"

    def check_publish(self, *, run_id: str, review_id: str) -> tuple[bool, Marker | None]:
        """The guards (see :mod:`wap.publish`): (already published by this run, production's marker)."""
        from wap.publish import check_before_swap

        with self.session() as query:
            return check_before_swap(
                query,
                self.dialect,
                write_schema=self.config.write_schema,
                prod_schema=self.config.prod_schema,
                run_id=run_id,
                review_id=review_id,
            )

    def finish_publish(self, *, run_id: str, review_id: str, previous: Marker | None) -> None:
        """After the swap: the markers moved as expected; record the publish in production."""
        from wap.publish import PUBLISHED_TABLE, check_after_swap

        with self.session() as query:
            check_after_swap(
                query,
                self.dialect,
                write_schema=self.config.write_schema,
                prod_schema=self.config.prod_schema,
                run_id=run_id,
                previous=previous,
            )
            query(
                f"create or replace table {self.name(self.config.prod_schema, PUBLISHED_TABLE)} as "
                "select %s::varchar as run_id, %s::varchar as review_id, %s::varchar as replaced_run_id, "
                "sysdate() as published_at",
                [run_id, review_id, previous.run_id if previous else None],
            )

    def complete_publish(self, *, run_id: str, review_id: str) -> bool:
        """A retry after a crash between the swap and :meth:`finish_publish`: record the publish if production
        has no record of this run yet (the production it replaced is now the write schema). True if recorded."""
        from wap.publish import read_marker, read_published

        with self.session() as query:
            record = read_published(query, self.dialect, self.config.prod_schema)
            if record is not None and record[0] == run_id:
                return False
            previous = read_marker(query, self.dialect, self.config.write_schema)
        self.finish_publish(run_id=run_id, review_id=review_id, previous=previous)
        return True

    # -- what travels with the swap: grants and schema properties ---------------------------------------------
    def schema_findings(self) -> list[dict[str, Any]]:
        """Swap-safety findings: grants production has and the write schema lacks (and the reverse), and
        schema properties that differ (see :mod:`wap.schema_checks`)."""
        from wap.schema_checks import grant_findings, property_findings

        write, prod = self.config.write_schema, self.config.prod_schema
        findings = property_findings(write, prod, self.schema_properties(write), self.schema_properties(prod))
        try:
            write_grants, prod_grants = self.schema_grants(write), self.schema_grants(prod)
        except Exception as error:  # e.g. the role may not SHOW GRANTS: unknown grants fail closed under "block"
            severity = "block" if self.config.grants_on_swap == "block" else "warn"
            message = f"cannot read the grants of {write} and {prod} ({error}); the swap would carry them unchecked"
            return [{"check": "grants_unreadable", "severity": severity, "relation": "", "message": message}, *findings]
        return grant_findings(write, prod, write_grants, prod_grants, self.config.grants_on_swap) + findings

    def schema_grants(self, schema: str) -> set[tuple[str, str, str]]:
        from wap.schema_checks import grants_from_show

        with self.connect() as conn, closing(conn.cursor()) as cursor:
            cursor.execute(f"SHOW GRANTS ON SCHEMA {self.name(schema)}")
            columns = [column[0] for column in cursor.description]
            return grants_from_show(columns, cursor.fetchall())

    def schema_properties(self, schema: str) -> dict[str, Any]:
        from wap.schema_checks import PROPERTIES

        with self.session(read_only=True) as query:
            rows = query(
                f"select {', '.join(PROPERTIES)} from information_schema.schemata where schema_name = %s",
                [SnowflakeDialect.identifier(schema).strip('"')],
            )
        return dict(zip(PROPERTIES, rows[0], strict=True)) if rows else {}

    def copy_grants(self) -> list[str]:
        """Grant production's missing grants on the write schema (``WAP_GRANTS_ON_SWAP=copy``); the statements."""
        from wap.schema_checks import copy_grant_statements

        write, prod = self.config.write_schema, self.config.prod_schema
        statements = copy_grant_statements(self.name(write), self.schema_grants(prod) - self.schema_grants(write))
        with self.session() as query:
            for statement in statements:
                query(statement, [])
        return statements

    def rollback(self) -> tuple[str, str]:
        """Swap back if the write schema still holds, unchanged, the production the last publish replaced."""
        from wap.publish import check_before_rollback, read_published

        write, prod = self.config.write_schema, self.config.prod_schema
        with self.session() as query:
            restored = check_before_rollback(query, self.dialect, write_schema=write, prod_schema=prod)
            withdrawn = read_published(query, self.dialect, prod)[0]  # type: ignore[index]
            query(self.swap_sql(), [])
        log.info("Rolled back: %s holds run %s again (run %s is in %s)", prod, restored, withdrawn, write)
        return restored, withdrawn


def fetch_all(cursor: Any, sql: str, params: Sequence[Any]) -> list[tuple]:
    """Run ``sql`` with ``params`` bound; without values the statement is sent as is (no ``%`` interpolation)."""
    if params:
        cursor.execute(_escape_quoted_percent(sql), list(params))
    else:
        cursor.execute(sql)
    return cursor.fetchall()


def _escape_quoted_percent(sql: str) -> str:
    """Double each ``%`` inside quoted identifiers and string literals: with values, ``pyformat`` interpolates the
    whole statement, and a catalog name may hold a ``%`` (``"growth %"``). Doubled quotes close and reopen."""
    out, open_quote = [], ""
    for char in sql:
        if open_quote == "" and char in "\"'":
            open_quote = char
        elif char == open_quote:
            open_quote = ""
        out.append("%%" if char == "%" and open_quote else char)
    return "".join(out)
