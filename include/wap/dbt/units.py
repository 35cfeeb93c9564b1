"""The project as the Write stage shows it in one-build mode: one unit per seed, model and snapshot, with its tests.

A unit is what one Airflow task watches while the single ``dbt build`` runs (:mod:`wap.write.watcher`): the node and
the tests attached to it, as ``dbt build`` runs them (a failing test stops the node's children). A test of several
nodes (a ``relationships`` test, a singular test joining two models) is a unit of its own, after all of them, as in
per-model mode (Cosmos' ``should_detach_multiple_parents_tests``). Ephemeral and disabled models build nothing and
have no unit; a dependency through an ephemeral model is kept (the unit waits for what the ephemeral model reads).

Read from the manifest `wap dbt prepare` wrote, so listing the units opens no connection and runs no dbt.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Node types with a unit of their own, and the suffix of their task id (Cosmos' names in watcher mode).
UNIT_SUFFIX = {"seed": "seed", "model": "run", "snapshot": "snapshot"}
_TASK_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class BuildUnit:
    """One task of the one-build Write stage.

    ``task_id``: within the write group (``stg_orders_run``, ``raw_customers_seed``, ``<test>_test``);
    ``unique_id``: the node (or the detached test); ``node_ids``: every dbt node whose result decides the unit (the
    node and its tests); ``upstream``: task ids of the units it waits for; ``label``: what the report's test rows
    call it (the node's name, ``_v<version>`` for a model version, or the detached test's name: per-model mode's names).
    """

    task_id: str
    unique_id: str
    resource_type: str
    label: str
    node_ids: tuple[str, ...]
    upstream: tuple[str, ...]


def _task_id(node: dict[str, Any], suffix: str) -> str:
    name = str(node.get("name") or node["unique_id"].split(".")[-1])
    version = node.get("version")
    if version is not None:
        name = f"{name}_v{version}"
    return _TASK_ID_UNSAFE.sub("_", f"{name}_{suffix}")


def _is_unit(node: dict[str, Any]) -> bool:
    if node.get("resource_type") not in UNIT_SUFFIX:
        return False
    config = node.get("config") or {}
    return config.get("enabled", True) is not False and config.get("materialized") != "ephemeral"


def build_units(manifest: dict[str, Any]) -> list[BuildUnit]:
    """The units of the project, upstream first (in the manifest's order within a level)."""
    nodes: dict[str, dict[str, Any]] = manifest.get("nodes", {})
    unit_nodes = {uid: node for uid, node in nodes.items() if _is_unit(node)}

    def parents(uid: str, seen: frozenset[str] = frozenset()) -> set[str]:
        """The unit nodes ``uid`` depends on, through nodes that have no unit (ephemeral models)."""
        found: set[str] = set()
        for dep in (nodes.get(uid) or {}).get("depends_on", {}).get("nodes", []):
            if dep in unit_nodes:
                found.add(dep)
            elif dep in nodes and dep not in seen:
                found |= parents(dep, seen | {uid})
        return found

    tests: dict[str, list[str]] = {uid: [] for uid in unit_nodes}
    detached: list[tuple[str, set[str]]] = []
    for uid, node in nodes.items():
        if node.get("resource_type") != "test" or (node.get("config") or {}).get("enabled", True) is False:
            continue
        tested = parents(uid)
        if len(tested) == 1:
            tests[next(iter(tested))].append(uid)
        elif tested:
            detached.append((uid, tested))

    task_ids = {uid: _task_id(node, UNIT_SUFFIX[node["resource_type"]]) for uid, node in unit_nodes.items()}
    units = [
        BuildUnit(
            task_id=task_ids[uid],
            unique_id=uid,
            resource_type=node["resource_type"],
            label=task_ids[uid].removesuffix("_" + UNIT_SUFFIX[node["resource_type"]]),
            node_ids=(uid, *sorted(tests[uid])),
            upstream=tuple(sorted(task_ids[parent] for parent in parents(uid))),
        )
        for uid, node in unit_nodes.items()
    ]
    for uid, tested in detached:
        node = nodes[uid]
        units.append(
            BuildUnit(
                task_id=_task_id(node, "test"),
                unique_id=uid,
                resource_type="test",
                label=str(node["name"]),
                node_ids=(uid,),
                upstream=tuple(sorted(task_ids[parent] for parent in tested)),
            )
        )
    return _upstream_first(units)


def _upstream_first(units: list[BuildUnit]) -> list[BuildUnit]:
    by_id = {unit.task_id: unit for unit in units}
    ordered: list[BuildUnit] = []
    placed: set[str] = set()

    def place(unit: BuildUnit, path: frozenset[str] = frozenset()) -> None:
        if unit.task_id in placed or unit.task_id in path:
            return
        for upstream in unit.upstream:
            if upstream in by_id:
                place(by_id[upstream], path | {unit.task_id})
        placed.add(unit.task_id)
        ordered.append(unit)

    for unit in units:
        place(unit)
    return ordered


def load_build_units(manifest_path: Path) -> list[BuildUnit]:
    """:func:`build_units` of the manifest file."""
    return build_units(json.loads(manifest_path.read_text(encoding="utf-8")))
