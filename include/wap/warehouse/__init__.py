"""Warehouse adapters: one class per warehouse kind, chosen by the configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wap.config import WapConfig
    from wap.warehouse.duckdb import DuckDBWarehouse


def open_warehouse(config: WapConfig) -> DuckDBWarehouse:
    """The adapter of the configured warehouse (imports its driver only when asked for)."""
    if config.warehouse == "duckdb":
        from wap.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(config)
    raise NotImplementedError(
        f"WAP_WAREHOUSE={config.warehouse!r}: the Snowflake adapter is not built yet (see the project issues)"
    )
