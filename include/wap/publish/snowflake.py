"""Publish on Snowflake: the guards and checks around ``ALTER SCHEMA ... SWAP WITH``, and the rollback.

The swap itself is one atomic, metadata-only statement that :class:`~wap.publish.operator.SnowflakePublishOperator`
runs through ``SQLExecuteQueryOperator``; this module says what it is, checks before it (:mod:`wap.publish.guards`)
and records it after. Snowflake's DDL autocommits, so the guards and the swap are separate statements: a retry
after a crash between the swap and its record records it once, and never swaps again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from wap.audit.dialect import DIALECTS, SnowflakeDialect
from wap.publish.guards import (
    PUBLISHED_TABLE,
    RollbackResult,
    check_after_swap,
    check_before_rollback,
    check_before_swap,
    read_marker,
    read_published,
)

if TYPE_CHECKING:
    from wap.audit.marker import Marker
    from wap.warehouse.snowflake import SnowflakeWarehouse

log = logging.getLogger(__name__)

dialect = DIALECTS["snowflake"]


class SnowflakePublisher:
    """Publish and rollback in the database ``WAP_DATABASE`` of ``warehouse``."""

    def __init__(self, warehouse: SnowflakeWarehouse) -> None:
        self.warehouse = warehouse
        self.config = warehouse.config

    def name(self, *identifiers: str) -> str:
        """``<db>.<identifiers...>``: each a configured identifier as Snowflake resolves it unquoted."""
        return SnowflakeDialect.qualified(self.warehouse.database, *identifiers)

    def swap_sql(self) -> str:
        """``ALTER SCHEMA <db>.<write> SWAP WITH <db>.<prod>``: atomic and metadata-only on Snowflake."""
        return f"ALTER SCHEMA {self.name(self.config.write_schema)} SWAP WITH {self.name(self.config.prod_schema)}"

    def check_publish(self, *, run_id: str, review_id: str) -> tuple[bool, Marker | None]:
        """The guards: (already published by this run, production's marker)."""
        with self.warehouse.session() as query:
            return check_before_swap(
                query,
                dialect,
                write_schema=self.config.write_schema,
                prod_schema=self.config.prod_schema,
                run_id=run_id,
                review_id=review_id,
            )

    def finish_publish(self, *, run_id: str, review_id: str, previous: Marker | None) -> None:
        """After the swap: the markers moved as expected; record the publish in production."""
        with self.warehouse.session() as query:
            check_after_swap(
                query,
                dialect,
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
        with self.warehouse.session() as query:
            record = read_published(query, dialect, self.config.prod_schema)
            if record is not None and record[0] == run_id:
                return False
            previous = read_marker(query, dialect, self.config.write_schema)
        self.finish_publish(run_id=run_id, review_id=review_id, previous=previous)
        return True

    def rollback(self) -> RollbackResult:
        """Swap back if the write schema still holds, unchanged, the production the last publish replaced.
        Returns what it put back (the run production goes back to, the run it held, each relation's status)."""
        write, prod = self.config.write_schema, self.config.prod_schema
        with self.warehouse.session() as query:
            result = check_before_rollback(query, dialect, write_schema=write, prod_schema=prod)
            query(self.swap_sql(), [])
        log.info("Rolled back: %s", result.describe(prod, write))
        return result
