"""Warehouse connections: one class per warehouse kind, chosen by the configuration.

Both offer ``kind`` (``duckdb`` or ``snowflake``: the SQL dialect, see :mod:`wap.audit.dialect`), ``connect()`` (a
driver connection, closed on exit) and ``session(read_only=...)`` (a :data:`Query` on one connection). What is
done through them lives with the stage that does it: the diff and the marker in :mod:`wap.audit`, the swap in
:mod:`wap.publish`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wap.config import WapConfig
    from wap.warehouse.duckdb import DuckDBWarehouse
    from wap.warehouse.snowflake import SnowflakeWarehouse

#: Run one statement with bound values and return all its rows: what a warehouse session offers.
Query = Callable[[str, Sequence[Any]], list[tuple]]


def open_warehouse(config: WapConfig) -> DuckDBWarehouse | SnowflakeWarehouse:
    """The connections of the configured warehouse (imports its driver only when asked for)."""
    if config.warehouse == "duckdb":
        from wap.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(config)
    if config.warehouse == "snowflake":
        from wap.warehouse.snowflake import SnowflakeWarehouse

        return SnowflakeWarehouse(config)
    raise ValueError(f"WAP_WAREHOUSE={config.warehouse!r} has no adapter")
