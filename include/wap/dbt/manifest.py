"""What the bundle reads from the dbt manifest: each model's relation name and primary key (for the audit), and
whether every relation of the project builds into the write schema (checked at DAG import)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wap.config import ConfigError

#: Node types that become a relation of the write schema (unless ephemeral).
RELATIONAL_TYPES = ("model", "seed", "snapshot")
#: Configuration that places a node in a schema or database of its own.
_PLACEMENT = ("database", "schema", "target_database", "target_schema")


def primary_keys(manifest: dict[str, Any]) -> dict[str, list[str]]:
    """``{relation name: key columns}`` for every model, seed and snapshot with a declared or tested key.

    In order of precedence: ``meta.wap.primary_key``, ``unique_key`` (a string or list), a
    ``unique_combination_of_columns`` test, a ``unique`` test on one column. A snapshot holds one row per version
    of its ``unique_key``, so its key is the ``unique_key`` with the version's ``dbt_valid_from`` (or the name its
    ``snapshot_meta_column_names`` gives it).
    """
    nodes = {
        uid: node for uid, node in manifest.get("nodes", {}).items() if node.get("resource_type") in RELATIONAL_TYPES
    }
    tested: dict[str, list[str]] = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "test" or node.get("attached_node") not in nodes:
            continue
        metadata = node.get("test_metadata") or {}
        kwargs = metadata.get("kwargs") or {}
        if metadata.get("name") == "unique_combination_of_columns" and kwargs.get("combination_of_columns"):
            tested.setdefault(node["attached_node"], list(kwargs["combination_of_columns"]))
        elif metadata.get("name") == "unique" and kwargs.get("column_name"):
            tested.setdefault(node["attached_node"], [kwargs["column_name"]])
    keys = {}
    for uid, node in nodes.items():
        config = node.get("config") or {}
        declared = ((config.get("meta") or {}).get("wap") or {}).get("primary_key") or config.get("unique_key")
        if isinstance(declared, str):
            declared = [declared]
        key = list(declared or tested.get(uid) or [])
        if key and node.get("resource_type") == "snapshot":
            valid_from = (config.get("snapshot_meta_column_names") or {}).get("dbt_valid_from") or "dbt_valid_from"
            key = [*key, valid_from] if valid_from not in key else key
        if key:
            keys[node.get("alias") or node["name"]] = key
    return keys


def load_primary_keys(manifest_path: Path) -> dict[str, list[str]]:
    """:func:`primary_keys` of the manifest file; an absent manifest gives no keys (multiset diffs)."""
    if not manifest_path.exists():
        return {}
    return primary_keys(json.loads(manifest_path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Misplaced:
    """A model, seed or snapshot that does not build into the write schema."""

    node: str  # "model orders (models/marts/orders.sql)"
    settings: tuple[str, ...]  # its own placement, e.g. "schema 'marts'"; empty when generate_schema_name moved it
    schema: str  # the schema dbt resolved for it

    def __str__(self) -> str:
        where = ", ".join(self.settings) or f"schema '{self.schema}' (as generate_schema_name resolves it)"
        return f"{self.node}: {where}"


def misplaced_nodes(manifest: dict[str, Any], write_schema: str) -> list[Misplaced]:
    """The models, seeds and snapshots that one swap of the write schema could not publish: a schema or database
    of their own (a snapshot's ``target_schema``/``target_database`` too), or a schema resolved elsewhere."""
    found = []
    for node in sorted(manifest.get("nodes", {}).values(), key=lambda node: str(node.get("unique_id", ""))):
        config = node.get("config") or {}
        if node.get("resource_type") not in RELATIONAL_TYPES or config.get("materialized") == "ephemeral":
            continue
        settings = tuple(f"{name} '{config[name]}'" for name in _PLACEMENT if config.get(name))
        schema = str(node.get("schema") or "")
        if settings or schema.lower() != write_schema.lower():
            path = node.get("original_file_path") or node.get("path") or ""
            found.append(Misplaced(f"{node['resource_type']} {node.get('name')} ({path})", settings, schema))
    return found


def check_one_schema(manifest_path: Path, write_schema: str) -> None:
    """Refuse a project that one schema swap cannot publish, naming the nodes and what to change.

    Called at DAG import, so such a project's DAG fails to import and nothing is built: :class:`ConfigError`.
    """
    if not manifest_path.is_file():
        raise ConfigError(
            f"no dbt manifest at {manifest_path}: run `wap dbt prepare` (set-up does) to parse the project"
        )
    misplaced = misplaced_nodes(json.loads(manifest_path.read_text(encoding="utf-8")), write_schema)
    if not misplaced:
        return
    if not any(node.settings for node in misplaced) and len({node.schema for node in misplaced}) == 1:
        raise ConfigError(
            f"the dbt manifest {manifest_path} was parsed for schema {misplaced[0].schema!r}, not WAP_WRITE_SCHEMA="
            f"{write_schema!r}: run `wap dbt prepare` again"
        )
    raise ConfigError(
        f"the dbt project cannot be published as one schema: {len(misplaced)} node(s) build outside the write "
        f"schema {write_schema!r}: " + "; ".join(map(str, misplaced)) + ". Remove their schema or database "
        "configuration (and any generate_schema_name that sends them elsewhere): every model, seed and snapshot "
        "must build into the write schema, which publish swaps with production as a whole"
    )
