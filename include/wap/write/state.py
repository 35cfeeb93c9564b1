"""Which relations of the project carry state from one cycle to the next: its incremental models and snapshots.

Every other relation (views, tables, seeds) is rebuilt from its query each cycle, so the write schema starts
without it. An incremental model extends what production holds, and a snapshot adds to production's history: both
must start from production's current state, or the published relation would lose every batch, or every version,
that the previous cycles added.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wap.config import ConfigError

#: The run conf key that rebuilds incremental models from scratch (``dbt build --full-refresh``).
FULL_REFRESH_CONF = "full_refresh"


@dataclass(frozen=True)
class StatefulRelation:
    """An incremental model or a snapshot, by its relation name (the node's alias) in the write schema."""

    name: str
    resource_type: str  # "model" (incremental) or "snapshot"
    node: str  # the dbt unique id, for messages

    @property
    def kind(self) -> str:
        return "snapshot" if self.resource_type == "snapshot" else "incremental model"


def stateful_relations(manifest: dict[str, Any], *, full_refresh: bool = False) -> list[StatefulRelation]:
    """The project's incremental models and snapshots, sorted by name.

    With ``full_refresh`` (a run triggered with conf ``{"full_refresh": true}``, built with ``--full-refresh``) an
    incremental model is rebuilt from scratch and so carries nothing, unless its own configuration says
    ``full_refresh: false`` (dbt keeps it incremental then). Snapshots carry their history either way: dbt's
    ``--full-refresh`` never rebuilds a snapshot, so a plain dbt project keeps it too.
    """
    found = []
    for uid, node in manifest.get("nodes", {}).items():
        config = node.get("config") or {}
        resource_type = node.get("resource_type")
        if resource_type == "snapshot":
            pass
        elif resource_type == "model" and config.get("materialized") == "incremental":
            if full_refresh and config.get("full_refresh") is not False:
                continue
        else:
            continue
        found.append(StatefulRelation(str(node.get("alias") or node["name"]), str(resource_type), uid))
    return sorted(found, key=lambda relation: relation.name.lower())


def load_stateful_relations(manifest_path: Path, *, full_refresh: bool = False) -> list[StatefulRelation]:
    """:func:`stateful_relations` of the manifest file `wap dbt prepare` wrote."""
    return stateful_relations(json.loads(manifest_path.read_text(encoding="utf-8")), full_refresh=full_refresh)


def full_refresh_requested(conf: Mapping[str, Any] | None) -> bool:
    """Whether the run's conf asks for ``{"full_refresh": true}``; any value but ``true`` or ``false`` is refused
    (a typo must not rebuild, or fail to rebuild, production's incremental models)."""
    value = (conf or {}).get(FULL_REFRESH_CONF, False)
    if not isinstance(value, bool):
        raise ConfigError(
            f"the run's conf {FULL_REFRESH_CONF!r} must be true or false (JSON), not {value!r}: trigger with "
            f'{{"{FULL_REFRESH_CONF}": true}} to rebuild the incremental models from scratch'
        )
    return value
