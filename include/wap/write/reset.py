"""Reset the write schema before the build: drop what earlier cycles left there, then carry production's state.

After a publish the write schema holds the previous production; after a reject or a failed build, an unpublished
build. Neither may reach production again, so every table and view in the write schema is dropped. Then each
incremental model and snapshot production holds is carried over (:mod:`wap.write.state`), so that dbt extends
production's table rather than a stale one:

- **DuckDB**: a copy (``CREATE TABLE ... AS SELECT``), dropped and copied in one transaction; DuckDB has no
  zero-copy clone, and ``dbt clone`` would make pointer views into production instead.
- **Snowflake**: a zero-copy ``CREATE TABLE ... CLONE ... COPY GRANTS`` per relation (``TRANSIENT`` when
  production's is: Snowflake cannot clone a transient table into a permanent one). The write schema itself is
  kept, with its own grants and properties; only the relations in it are dropped. Snowflake DDL autocommits, so
  a reset that fails halfway leaves a write schema that is not production's and not published: the task fails
  and the next run resets it again.

Names from the catalog are quoted exactly; configured names (database, schemas) are validated identifiers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wap.audit.dialect import SnowflakeDialect, quote
from wap.warehouse import open_warehouse

if TYPE_CHECKING:
    import duckdb

    from wap.config import WapConfig
    from wap.warehouse import Query
    from wap.warehouse.duckdb import DuckDBWarehouse
    from wap.warehouse.snowflake import SnowflakeWarehouse
    from wap.write.state import StatefulRelation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Relation:
    """A relation in the catalog: its exact name, kind (``BASE TABLE``, ``VIEW``, ...) and whether it is
    transient (Snowflake)."""

    name: str
    kind: str
    transient: bool = False


@dataclass(frozen=True)
class ResetResult:
    """What the reset did: relations dropped from the write schema, relations carried from production, and the
    incremental models and snapshots production does not hold yet (dbt builds them from nothing)."""

    dropped: tuple[str, ...]
    carried: tuple[str, ...]
    new: tuple[str, ...]

    def as_dict(self) -> dict[str, list[str]]:
        return {"dropped": list(self.dropped), "carried": list(self.carried), "new": list(self.new)}


def reset_write_schema(config: WapConfig, stateful: Sequence[StatefulRelation]) -> ResetResult:
    """Empty the configured write schema, then carry ``stateful`` relations over from production."""
    warehouse = open_warehouse(config)
    if warehouse.kind == "snowflake":
        result = _reset_snowflake(warehouse, stateful)  # type: ignore[arg-type]
    else:
        result = _reset_duckdb(warehouse, stateful)  # type: ignore[arg-type]
    log.info(
        "Write schema %s reset: dropped %d relation(s) of earlier cycles; carried from %s: %s; built from nothing: %s",
        config.write_schema,
        len(result.dropped),
        config.prod_schema,
        ", ".join(result.carried) or "none",
        ", ".join(result.new) or "none",
    )
    return result


def carried_from(production: Mapping[str, Relation], stateful: Sequence[StatefulRelation]) -> list[Relation]:
    """The production tables to carry: the stateful relations production holds as tables (names compared as the
    warehouse compares unquoted names, case-insensitively)."""
    tables = {name.lower(): relation for name, relation in production.items() if "TABLE" in relation.kind.upper()}
    return [tables[relation.name.lower()] for relation in stateful if relation.name.lower() in tables]


def _split(stateful: Sequence[StatefulRelation], carried: Sequence[Relation]) -> tuple[str, ...]:
    names = {relation.name.lower() for relation in carried}
    return tuple(relation.name for relation in stateful if relation.name.lower() not in names)


# -- DuckDB ---------------------------------------------------------------------------------------------------------
def _reset_duckdb(warehouse: DuckDBWarehouse, stateful: Sequence[StatefulRelation]) -> ResetResult:
    config = warehouse.config
    write, prod = quote(config.write_schema), quote(config.prod_schema)
    with warehouse.transaction() as conn:
        conn.execute(f"create schema if not exists {write}")
        existing = _duckdb_relations(conn, config.write_schema)
        for relation in sorted(existing.values(), key=lambda relation: relation.kind != "VIEW"):  # views first
            kind = "view" if relation.kind == "VIEW" else "table"
            conn.execute(f"drop {kind} {write}.{quote(relation.name)}")
        carried = carried_from(_duckdb_relations(conn, config.prod_schema), stateful)
        for relation in carried:
            name = quote(relation.name)
            conn.execute(f"create table {write}.{name} as select * from {prod}.{name}")
    return ResetResult(tuple(sorted(existing)), tuple(r.name for r in carried), _split(stateful, carried))


def _duckdb_relations(conn: duckdb.DuckDBPyConnection, schema: str) -> dict[str, Relation]:
    rows = conn.execute(
        "select table_name, 'BASE TABLE' from duckdb_tables() where database_name = current_database() "
        "and schema_name = ? and not temporary "
        "union all select view_name, 'VIEW' from duckdb_views() where database_name = current_database() "
        "and schema_name = ? and not internal and not temporary",
        [schema, schema],
    ).fetchall()
    return {name: Relation(name, kind) for name, kind in rows}


# -- Snowflake ------------------------------------------------------------------------------------------------------
def _reset_snowflake(warehouse: SnowflakeWarehouse, stateful: Sequence[StatefulRelation]) -> ResetResult:
    config = warehouse.config
    with warehouse.session() as query:
        query(f"create schema if not exists {SnowflakeDialect.qualified(warehouse.database, config.write_schema)}", [])
        existing = snowflake_relations(query, config.write_schema)
        production = snowflake_relations(query, config.prod_schema)
        carried = carried_from(production, stateful)
        for statement in snowflake_reset_statements(
            warehouse.database, config.write_schema, config.prod_schema, existing.values(), carried
        ):
            query(statement, [])
    return ResetResult(tuple(sorted(existing)), tuple(r.name for r in carried), _split(stateful, carried))


def snowflake_relations(query: Query, schema: str) -> dict[str, Relation]:
    """The tables and views of ``schema`` in the session's database. Views are read from
    ``information_schema.views`` as well (Snowflake lists them in ``tables`` too; fakesnow only there)."""
    dialect = SnowflakeDialect()
    tables = query(
        "select table_name, table_type, is_transient from information_schema.tables "
        f"where table_catalog = current_database() and lower(table_schema) = {dialect.placeholder}",
        [schema.lower()],
    )
    found = {
        name: Relation(name, str(kind or "BASE TABLE").upper(), str(transient).upper() == "YES")
        for name, kind, transient in tables
    }
    views = query(
        "select table_name from information_schema.views "
        f"where table_catalog = current_database() and lower(table_schema) = {dialect.placeholder}",
        [schema.lower()],
    )
    for (name,) in views:
        found.setdefault(name, Relation(name, "VIEW"))
    return found


#: ``DROP`` keyword by catalog kind; anything else (base, transient, dynamic tables...) is dropped as a table.
_DROP = {"VIEW": "view", "MATERIALIZED VIEW": "materialized view", "DYNAMIC TABLE": "dynamic table"}


def snowflake_reset_statements(
    database: str, write: str, prod: str, existing: Iterable[Relation], carried: Sequence[Relation]
) -> list[str]:
    """The statements of a Snowflake reset, in order: drop every relation of the write schema (views first), then
    one zero-copy clone per carried production table, with its grants."""
    write_name = SnowflakeDialect.qualified(database, write)
    prod_name = SnowflakeDialect.qualified(database, prod)
    relations = sorted(existing, key=lambda relation: (relation.kind != "VIEW", relation.name))
    statements = [
        f"drop {_DROP.get(relation.kind, 'table')} if exists {write_name}.{quote(relation.name)}"
        for relation in relations
    ]
    for relation in carried:
        transient = "transient " if relation.transient else ""
        name = quote(relation.name)
        statements.append(f"create {transient}table {write_name}.{name} clone {prod_name}.{name} copy grants")
    return statements


def reset_for_run(config: WapConfig, conf: Mapping[str, object] | None) -> dict[str, object]:
    """The reset of one run: its conf's ``full_refresh`` (refused unless a JSON boolean, :class:`ConfigError`), the
    project's stateful relations from the prepared manifest, then :func:`reset_write_schema`."""
    from wap.dbt.project import prepared_project
    from wap.write.state import full_refresh_requested, load_stateful_relations

    full_refresh = full_refresh_requested(conf)
    stateful = load_stateful_relations(prepared_project(config).manifest_path, full_refresh=full_refresh)
    result = reset_write_schema(config, stateful)
    return {**result.as_dict(), "full_refresh": full_refresh}
