"""The Publish stage: the guarded swap of the write schema with production, and the rollback.

``guards`` (what must hold before and after a swap, both warehouses), ``duckdb`` (the embedded warehouse's atomic
emulation of the swap), ``snowflake`` and ``operator`` (``ALTER SCHEMA ... SWAP WITH`` through
``SQLExecuteQueryOperator``), ``grants`` (``WAP_GRANTS_ON_SWAP=copy``), ``failpoints`` (named crash points for the
fault tests, inert unless armed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wap.warehouse import open_warehouse

if TYPE_CHECKING:
    from wap.config import WapConfig
    from wap.publish.duckdb import DuckDBPublisher
    from wap.publish.snowflake import SnowflakePublisher


def open_publisher(config: WapConfig) -> DuckDBPublisher | SnowflakePublisher:
    """The publisher of the configured warehouse (both can roll back; DuckDB's also publishes in Python)."""
    warehouse = open_warehouse(config)
    if warehouse.kind == "snowflake":
        from wap.publish.snowflake import SnowflakePublisher

        return SnowflakePublisher(warehouse)
    from wap.publish.duckdb import DuckDBPublisher

    return DuckDBPublisher(warehouse)
