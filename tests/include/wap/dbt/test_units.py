"""The units of the one-build Write stage: a task per seed, model and snapshot with its tests, from the manifest."""

from __future__ import annotations

import json
from pathlib import Path

from wap.dbt.units import build_units, load_build_units


def node(uid: str, *depends_on: str, materialized: str = "table", **extra: object) -> tuple[str, dict]:
    kind, _, name = uid.split(".")
    config = {"materialized": materialized, **extra.pop("config", {})}  # type: ignore[dict-item]
    return uid, {
        "unique_id": uid,
        "resource_type": kind,
        "name": name,
        "config": config,
        "depends_on": {"nodes": list(depends_on)},
        **extra,
    }


MANIFEST = {
    "nodes": dict(
        [
            node("seed.p.raw_orders", materialized="seed"),
            node("model.p.stg_orders", "seed.p.raw_orders", materialized="view"),
            node("model.p.eph", "model.p.stg_orders", materialized="ephemeral"),
            node("model.p.orders", "model.p.eph"),
            node("model.p.customers", "seed.p.raw_orders"),
            node("model.p.gone", "seed.p.raw_orders", config={"enabled": False}),
            node("snapshot.p.orders_history", "model.p.orders", materialized="snapshot"),
            node("model.p.summary", "model.p.orders", version=2, alias="summary_v2"),
            node("test.p.unique_orders_id", "model.p.orders", materialized="test"),
            node("test.p.not_null_orders_id", "model.p.orders", materialized="test"),
            node("test.p.eph_check", "model.p.eph", materialized="test"),  # a test of an ephemeral model
            node("test.p.relationships_orders_customer", "model.p.orders", "model.p.customers", materialized="test"),
            node("test.p.no_parents", materialized="test"),
        ]
    )
}


def by_task(units: list) -> dict:
    return {unit.task_id: unit for unit in units}


def test_one_unit_per_seed_model_and_snapshot_named_as_cosmos_names_them() -> None:
    units = by_task(build_units(MANIFEST))
    assert set(units) == {
        "raw_orders_seed",
        "stg_orders_run",
        "orders_run",
        "customers_run",
        "orders_history_snapshot",
        "summary_v2_run",
        "relationships_orders_customer_test",
    }, "no unit for an ephemeral or disabled model, nor for a test of no model"
    assert units["summary_v2_run"].label == "summary_v2" and units["orders_run"].label == "orders"


def test_a_unit_holds_its_node_then_its_tests() -> None:
    orders = by_task(build_units(MANIFEST))["orders_run"]
    assert orders.node_ids == ("model.p.orders", "test.p.not_null_orders_id", "test.p.unique_orders_id")
    stg = by_task(build_units(MANIFEST))["stg_orders_run"]
    assert stg.node_ids == ("model.p.stg_orders", "test.p.eph_check"), "a test of an ephemeral model: what it reads"


def test_upstream_is_kept_through_ephemeral_models_and_units_come_upstream_first() -> None:
    units = build_units(MANIFEST)
    found = by_task(units)
    assert found["orders_run"].upstream == ("stg_orders_run",)
    assert found["relationships_orders_customer_test"].upstream == ("customers_run", "orders_run")
    assert found["relationships_orders_customer_test"].node_ids == ("test.p.relationships_orders_customer",)
    order = [unit.task_id for unit in units]
    for unit in units:
        assert all(order.index(up) < order.index(unit.task_id) for up in unit.upstream)


def test_names_that_are_not_task_ids_are_made_safe(tmp_path: Path) -> None:
    manifest = {"nodes": dict([node("model.p.weird name!")])}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    (unit,) = load_build_units(path)
    assert unit.task_id == "weird_name__run"
