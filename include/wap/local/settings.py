"""Apply an Astro CLI `airflow_settings.yaml` (connections, pools, variables) to the local Airflow.

`astro dev start` does this inside its containers; the local set-up (`make setup`) does it with this module
so that both read the same file. Entries with an empty id are templates and are skipped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)


class SettingsError(ValueError):
    """The settings file is not in the Astro CLI format; the message says where."""


@dataclass(frozen=True)
class ConnectionSetting:
    conn_id: str
    conn_type: str
    host: str | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = None
    port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PoolSetting:
    name: str
    slots: int
    description: str = ""


@dataclass(frozen=True)
class AirflowSettings:
    connections: tuple[ConnectionSetting, ...] = ()
    pools: tuple[PoolSetting, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _entries(section: dict[str, Any], key: str, id_key: str) -> list[dict[str, Any]]:
    entries = section.get(key) or []
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise SettingsError(f"airflow.{key} must be a list of mappings")
    return [entry for entry in entries if _text(entry.get(id_key))]


def parse_settings(text: str) -> AirflowSettings:
    """Parse the YAML text of an Astro `airflow_settings.yaml`."""
    document = yaml.safe_load(text) or {}
    section = document.get("airflow") if isinstance(document, dict) else None
    if section is None:
        return AirflowSettings()
    if not isinstance(section, dict):
        raise SettingsError("the top-level key 'airflow' must hold a mapping")
    connections = []
    for entry in _entries(section, "connections", "conn_id"):
        if not _text(entry.get("conn_type")):
            raise SettingsError(f"connection {entry['conn_id']!r} has no conn_type")
        extra = entry.get("conn_extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra)
        port = entry.get("conn_port")
        connections.append(
            ConnectionSetting(
                conn_id=str(entry["conn_id"]),
                conn_type=str(entry["conn_type"]),
                host=_text(entry.get("conn_host")),
                schema=_text(entry.get("conn_schema")),
                login=_text(entry.get("conn_login")),
                password=_text(entry.get("conn_password")),
                port=int(port) if port not in (None, "") else None,
                extra=dict(extra),
            )
        )
    pools = []
    for entry in _entries(section, "pools", "pool_name"):
        slots = entry.get("pool_slot")
        if not isinstance(slots, int) or slots < 0:
            raise SettingsError(f"pool {entry['pool_name']!r} needs pool_slot, a whole number >= 0")
        pools.append(PoolSetting(str(entry["pool_name"]), slots, _text(entry.get("pool_description")) or ""))
    variables = tuple(
        (str(entry["variable_name"]), "" if entry.get("variable_value") is None else str(entry["variable_value"]))
        for entry in _entries(section, "variables", "variable_name")
    )
    return AirflowSettings(tuple(connections), tuple(pools), variables)


def apply_settings(settings: AirflowSettings) -> None:
    """Create or replace every connection, pool and variable in the Airflow metadata database."""
    # The metadata-DB models on purpose: like `astro dev start`, this writes Airflow's own database
    # from outside any task; the task SDK's Connection/Variable are read-side views of it.
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        for conn in settings.connections:
            session.query(Connection).filter(Connection.conn_id == conn.conn_id).delete()  # noqa: AIR311
            session.add(
                Connection(  # noqa: AIR311
                    conn_id=conn.conn_id,
                    conn_type=conn.conn_type,
                    host=conn.host,
                    schema=conn.schema,
                    login=conn.login,
                    password=conn.password,
                    port=conn.port,
                    extra=json.dumps(conn.extra) if conn.extra else None,
                )
            )
            log.info("Connection %s (%s) set", conn.conn_id, conn.conn_type)
        for pool in settings.pools:
            Pool.create_or_update_pool(pool.name, pool.slots, pool.description, False, session=session)
            log.info("Pool %s set to %d slot(s)", pool.name, pool.slots)
        for key, value in settings.variables:
            Variable.set(key, value, session=session)  # noqa: AIR311
            log.info("Variable %s set", key)


def apply_settings_file(path: Path) -> AirflowSettings:
    """Parse ``path`` and apply it; returns what was applied."""
    settings = parse_settings(path.read_text(encoding="utf-8"))
    apply_settings(settings)
    return settings
