"""Warehouse adapters: one class per warehouse kind, chosen by the configuration.

Both offer ``dialect``, ``session(read_only=...)`` (a :data:`~wap.diff.engine.Query` on one connection),
``write_marker(...)`` and ``period_counts(...)``; ``load_landing`` (the demo data) is the embedded warehouse's only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wap.config import WapConfig
    from wap.warehouse.duckdb import DuckDBWarehouse
    from wap.warehouse.snowflake import SnowflakeWarehouse


def open_warehouse(config: WapConfig) -> DuckDBWarehouse | SnowflakeWarehouse:
    """The adapter of the configured warehouse (imports its driver only when asked for)."""
    if config.warehouse == "duckdb":
        from wap.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(config)
    if config.warehouse == "snowflake":
        from wap.warehouse.snowflake import SnowflakeWarehouse

        return SnowflakeWarehouse(config)
    raise ValueError(f"WAP_WAREHOUSE={config.warehouse!r} has no adapter")
