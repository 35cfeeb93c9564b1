"""The dbt profile the bundle supplies, so a project needs no `profiles.yml` of its own (and none is read).

DuckDB: the file ``WAP_DUCKDB_PATH``, schema = the write schema, DuckDB settings (``threads``, ``memory_limit``,
...) from the extras of ``duckdb_default``, as the bundle's own DuckDB hook reads them. Snowflake: mapped from
``snowflake_default`` by :class:`wap.dbt.cosmos.SnowflakeConnectionProfileMapping`.

The profile is named as the project asks (``profile:`` in its ``dbt_project.yml``); its target is ``duckdb`` or
``snowflake``, the warehouse kind. Inside Airflow Cosmos writes it per task (the mappings in
:mod:`wap.dbt.cosmos`); outside (set-up, the demo, the CLI) :func:`write_profiles` writes the same profile to a file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from wap.config import WapConfig
    from wap.dbt.project import DbtProject

log = logging.getLogger(__name__)

#: dbt threads on the embedded warehouse: one writing process (DuckDB's), in which the one build's dbt runs up to
#: four models side by side, as on Snowflake's profile; a per-model task runs one model whatever the number.
DUCKDB_THREADS = 4
#: The connection extras that are DuckDB settings (the keys the DuckDB hook reads; ``settings`` holds any other).
_SETTING_EXTRAS = ("threads", "memory_limit", "temp_directory")


def duckdb_settings(extra: Mapping[str, Any]) -> dict[str, Any]:
    """DuckDB settings for dbt-duckdb from a ``duckdb_default`` connection's extras."""
    settings = {key: extra[key] for key in _SETTING_EXTRAS if extra.get(key) is not None}
    settings.update(extra.get("settings") or {})
    return settings


def duckdb_profile(
    path: str, schema: str, settings: Mapping[str, Any] | None = None, *, threads: int = DUCKDB_THREADS
) -> dict[str, Any]:
    """A dbt-duckdb target on the file ``path``, building into ``schema``, with DuckDB ``settings`` if any: the one
    shape of the profile, written to a file (:func:`write_profiles`) or by Cosmos in a task."""
    target: dict[str, Any] = {"type": "duckdb", "path": path, "schema": schema, "threads": threads}
    if settings:
        target["settings"] = dict(settings)
    return target


def duckdb_target(
    config: WapConfig, settings: Mapping[str, Any] | None = None, *, schema: str | None = None
) -> dict[str, Any]:
    """The dbt-duckdb target: the warehouse file, the write schema (or ``schema``), the connection's settings."""
    return duckdb_profile(str(config.duckdb_path), schema or config.write_schema, settings)


def connection_settings(config: WapConfig) -> dict[str, Any]:
    """The DuckDB settings of the ``duckdb_default`` connection, read as the `airflow` CLI reads it (outside a task:
    from the metadata database or a secrets backend); none when it cannot be read."""
    from airflow.models.connection import Connection

    try:
        return duckdb_settings(Connection.get_connection_from_secrets(config.duckdb_conn_id).extra_dejson)
    except Exception as error:  # not defined, or no metadata database (an image build)
        log.info("No settings from connection %r (%s): dbt uses DuckDB's defaults", config.duckdb_conn_id, error)
        return {}


def write_profiles(config: WapConfig, project: DbtProject, directory: Path, *, schema: str | None = None) -> Path:
    """``directory/profiles.yml`` with the project's profile on the embedded warehouse, building into the write
    schema (or ``schema``); returns its path. (Parsing needs no Snowflake credentials: the manifest is the same.)"""
    target = duckdb_target(config, connection_settings(config), schema=schema)
    document = {project.profile: {"target": "duckdb", "outputs": {"duckdb": target}}}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "profiles.yml"
    path.write_text(
        "# Written by the WAP bundle (wap dbt prepare): the profile it supplies; the project's own is not read.\n"
        + yaml.safe_dump(document, sort_keys=False),
        encoding="utf-8",
    )
    return path
