"""The demo's starting point on the embedded warehouse: production built through 2021, a 2022 load waiting.

Used by `make demo` (through `wap demo reset`) and by the integration tests, so both start from the same state.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from wap.audit.dialect import dialect_of, quote
from wap.audit.engine import read_catalog
from wap.config import WapError, validate_identifier
from wap.local.landing import FIRST_YEAR, LAST_YEAR, PRODUCTION_THROUGH, generate_rows, load_landing
from wap.warehouse import open_warehouse

if TYPE_CHECKING:
    from wap.config import WapConfig

log = logging.getLogger(__name__)

#: The demo's published table, whose rows per year `wap series` shows.
PUBLISHED_TABLE = "sysselsetting_forholdstall"


class DemoError(WapError):
    """The demo warehouse could not be prepared; the message carries dbt's output."""


def build_production_directly(config: WapConfig) -> None:
    """`dbt build` straight into the production schema: only for seeding a demo, never the WAP path."""
    from wap.dbt.prepare import run_dbt  # imports Cosmos, and with it Airflow: only when dbt runs
    from wap.dbt.profiles import write_profiles
    from wap.dbt.project import prepared_project

    project = prepared_project(config)  # as the Write stage builds it (views relative), made by `wap dbt prepare`
    work = config.duckdb_path.parent
    profiles = write_profiles(config, project, work / "dbt-profiles-production", schema=config.prod_schema).parent
    try:
        # Its own target path: the manifest Cosmos renders from stays as `wap dbt prepare` wrote it.
        run_dbt(
            config,
            project,
            "build",
            "--target-path",
            str(work / "dbt-target-production"),
            profiles=profiles,
            variables={"wap_write_schema": config.prod_schema},
        )
    except WapError as error:
        raise DemoError(f"dbt build of the demo production schema failed: {error}") from None


def reset_demo_warehouse(config: WapConfig) -> None:
    """Recreate the embedded warehouse: landing through 2021, `dwh` built from it, then the 2022 landing load."""
    if config.warehouse != "duckdb":
        raise DemoError("the demo data is for the embedded warehouse only (WAP_WAREHOUSE=duckdb)")
    for path in (config.duckdb_path, config.duckdb_path.with_name(config.duckdb_path.name + ".wal")):
        path.unlink(missing_ok=True)
    warehouse = open_warehouse(config)
    load_landing(warehouse, generate_rows(FIRST_YEAR, PRODUCTION_THROUGH))
    build_production_directly(config)
    load_landing(warehouse, generate_rows(PRODUCTION_THROUGH + 1, LAST_YEAR))


def period_counts(config: WapConfig, schema: str, table: str, period_column: str) -> list[tuple[object, int]]:
    """Rows per value of ``period_column`` in ``schema.table``, in order; empty if the table is missing."""
    for value, name in ((schema, "schema"), (table, "table"), (period_column, "column")):
        validate_identifier(value, name)
    if config.warehouse == "duckdb" and not config.duckdb_path.exists():
        return []
    warehouse = open_warehouse(config)
    dialect = dialect_of(warehouse)
    with warehouse.session(read_only=True) as query:
        relation = read_catalog(query, dialect, [schema])[schema].get(table.lower())
        if relation is None:
            return []
        column = next((name for name in relation.column_types if name.lower() == period_column.lower()), None)
        if column is None:
            return []
        sql = f"select {quote(column)}, count(*) from {dialect.relation(schema, relation.name)} group by 1 order by 1"
        return query(sql, [])
