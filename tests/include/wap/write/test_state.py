"""Which relations carry state across cycles, and the run conf that rebuilds them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wap.config import ConfigError
from wap.write.state import full_refresh_requested, load_stateful_relations, stateful_relations


def _node(resource_type: str, name: str, **config: object) -> dict:
    return {"resource_type": resource_type, "name": name, "alias": name, "config": config}


MANIFEST = {
    "nodes": {
        "model.p.orders_history": _node("model", "orders_history", materialized="incremental"),
        "model.p.kept": _node("model", "kept", materialized="incremental", full_refresh=False),
        "model.p.versioned_v2": {**_node("model", "versioned", materialized="incremental"), "alias": "versioned_v2"},
        "model.p.a_table": _node("model", "a_table", materialized="table"),
        "model.p.a_view": _node("model", "a_view", materialized="view"),
        "model.p.eph": _node("model", "eph", materialized="ephemeral"),
        "seed.p.raw": _node("seed", "raw", materialized="seed"),
        "snapshot.p.status_history": _node("snapshot", "status_history", materialized="snapshot"),
        "test.p.unique_x": _node("test", "unique_x", materialized="test"),
    }
}


def test_incremental_models_and_snapshots_carry_state_by_relation_name() -> None:
    found = stateful_relations(MANIFEST)
    assert [(r.name, r.kind) for r in found] == [
        ("kept", "incremental model"),
        ("orders_history", "incremental model"),
        ("status_history", "snapshot"),
        ("versioned_v2", "incremental model"),  # a model version's relation is its alias
    ]


def test_a_full_refresh_carries_snapshots_and_models_that_refuse_a_full_refresh() -> None:
    assert [r.name for r in stateful_relations(MANIFEST, full_refresh=True)] == ["kept", "status_history"]


def test_the_manifest_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps(MANIFEST))
    assert len(load_stateful_relations(tmp_path / "manifest.json")) == 4


@pytest.mark.parametrize(
    ("conf", "expected"),
    [(None, False), ({}, False), ({"full_refresh": True}, True), ({"full_refresh": False, "other": 1}, False)],
)
def test_full_refresh_comes_from_the_run_conf(conf: dict | None, expected: bool) -> None:
    assert full_refresh_requested(conf) is expected


@pytest.mark.parametrize("value", ["true", "yes", 1, None])
def test_a_full_refresh_that_is_not_a_boolean_is_refused(value: object) -> None:
    with pytest.raises(ConfigError, match=r"'full_refresh' must be true or false \(JSON\), not"):
        full_refresh_requested({"full_refresh": value})
