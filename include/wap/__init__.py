"""Write-Audit-Publish for dbt on Snowflake (or embedded DuckDB) with Airflow 3."""

from __future__ import annotations

__version__ = "0.1.0"
