"""What the audit reads from the dbt manifest: each model's relation name and primary key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def primary_keys(manifest: dict[str, Any]) -> dict[str, list[str]]:
    """``{relation name: key columns}`` for every model with a declared or tested key.

    In order of precedence: ``meta.wap.primary_key``, ``unique_key`` (a string or list), a
    ``unique_combination_of_columns`` test, a ``unique`` test on one column.
    """
    models = {uid: node for uid, node in manifest.get("nodes", {}).items() if node.get("resource_type") == "model"}
    tested: dict[str, list[str]] = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "test" or node.get("attached_node") not in models:
            continue
        metadata = node.get("test_metadata") or {}
        kwargs = metadata.get("kwargs") or {}
        if metadata.get("name") == "unique_combination_of_columns" and kwargs.get("combination_of_columns"):
            tested.setdefault(node["attached_node"], list(kwargs["combination_of_columns"]))
        elif metadata.get("name") == "unique" and kwargs.get("column_name"):
            tested.setdefault(node["attached_node"], [kwargs["column_name"]])
    keys = {}
    for uid, node in models.items():
        config = node.get("config") or {}
        declared = ((config.get("meta") or {}).get("wap") or {}).get("primary_key") or config.get("unique_key")
        if isinstance(declared, str):
            declared = [declared]
        key = declared or tested.get(uid)
        if key:
            keys[node.get("alias") or node["name"]] = list(key)
    return keys


def load_primary_keys(manifest_path: Path) -> dict[str, list[str]]:
    """:func:`primary_keys` of the manifest file; an absent manifest gives no keys (multiset diffs)."""
    if not manifest_path.exists():
        return {}
    return primary_keys(json.loads(manifest_path.read_text(encoding="utf-8")))
