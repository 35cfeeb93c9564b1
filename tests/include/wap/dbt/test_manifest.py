from __future__ import annotations

import json
from pathlib import Path

import pytest

from wap.config import ConfigError, load_config
from wap.dbt.manifest import check_one_schema, load_primary_keys, misplaced_nodes, primary_keys
from wap.dbt.project import prepared_project


def _model(name: str, **config: object) -> dict:
    return {"resource_type": "model", "name": name, "alias": name, "config": config}


def _test(name: str, attached: str, **kwargs: object) -> dict:
    return {"resource_type": "test", "attached_node": attached, "test_metadata": {"name": name, "kwargs": kwargs}}


def test_key_precedence_meta_then_unique_key_then_tests() -> None:
    manifest = {
        "nodes": {
            "model.p.a": _model("a", meta={"wap": {"primary_key": ["x", "y"]}}, unique_key="z"),
            "model.p.b": _model("b", unique_key="id"),
            "model.p.c": _model("c"),
            "model.p.d": _model("d"),
            "model.p.e": _model("e"),
            "test.p.1": _test("unique", "model.p.a", column_name="q"),
            "test.p.2": _test("unique_combination_of_columns", "model.p.c", combination_of_columns=["k1", "k2"]),
            "test.p.3": _test("unique", "model.p.d", column_name="id"),
            "test.p.4": _test("not_null", "model.p.e", column_name="id"),
        }
    }
    assert primary_keys(manifest) == {"a": ["x", "y"], "b": ["id"], "c": ["k1", "k2"], "d": ["id"]}


def test_alias_names_the_relation() -> None:
    manifest = {"nodes": {"model.p.m": {**_model("m", unique_key=["id"]), "alias": "m_table"}}}
    assert primary_keys(manifest) == {"m_table": ["id"]}


def test_seeds_and_snapshots_have_keys_and_a_snapshot_key_names_the_version() -> None:
    manifest = {
        "nodes": {
            "seed.p.s": {**_model("s", meta={"wap": {"primary_key": ["id"]}}), "resource_type": "seed"},
            "snapshot.p.h": {**_model("h", unique_key="customer_id"), "resource_type": "snapshot"},
            "snapshot.p.r": {
                **_model("r", unique_key=["a", "b"], snapshot_meta_column_names={"dbt_valid_from": "valid_from"}),
                "resource_type": "snapshot",
            },
            "snapshot.p.none": {**_model("none"), "resource_type": "snapshot"},
        }
    }
    assert primary_keys(manifest) == {
        "s": ["id"],
        "h": ["customer_id", "dbt_valid_from"],
        "r": ["a", "b", "valid_from"],
    }


def test_missing_manifest_means_no_keys(tmp_path: Path) -> None:
    assert load_primary_keys(tmp_path / "manifest.json") == {}


def test_the_projects_published_models_have_their_grain_as_key(tmp_path: Path) -> None:
    keys = load_primary_keys(prepared_project(load_config()).manifest_path)
    grain = ["region", "kjonn", "alder", "tid"]
    assert keys == {"int_sysselsetting_pivoted": grain, "sysselsetting_forholdstall": grain}
    (tmp_path / "m.json").write_text(json.dumps({"nodes": {}}))
    assert load_primary_keys(tmp_path / "m.json") == {}


# -- one schema: every relation of the project builds into the write schema --------------------------------------


def _node(kind: str, name: str, resolved: str = "develop_dwh", **config: object) -> dict:
    """A manifest node: ``resolved`` is the schema dbt resolved, ``config`` its own configuration."""
    path = f"{kind}s/{name}.{'csv' if kind == 'seed' else 'sql'}"
    return {
        "unique_id": f"{kind}.p.{name}",
        "resource_type": kind,
        "name": name,
        "schema": resolved,
        "original_file_path": path,
        "config": config,
    }


def _manifest(*nodes: dict) -> dict:
    return {"nodes": {node["unique_id"]: node for node in nodes}}


def test_nodes_in_the_write_schema_are_publishable() -> None:
    manifest = _manifest(
        _node("model", "stg", materialized="view"),
        _node("seed", "countries"),
        _node("snapshot", "orders_snapshot", "DEVELOP_DWH"),  # dbt-snowflake's case
        _node("model", "helper", "elsewhere", materialized="ephemeral"),  # no relation
        {"unique_id": "test.p.t", "resource_type": "test", "name": "t", "schema": "dbt_test__audit", "config": {}},
    )
    assert misplaced_nodes(manifest, "develop_dwh") == []


def test_each_way_out_of_the_write_schema_is_named() -> None:
    manifest = _manifest(
        _node("model", "orders", "develop_dwh_marts", schema="marts"),
        _node("seed", "rates", database="other_db"),
        _node("snapshot", "legacy", "snapshots", target_schema="snapshots"),
        _node("model", "moved", "somewhere"),  # a generate_schema_name of the project's own
        _node("model", "fine"),
    )
    assert [str(node) for node in misplaced_nodes(manifest, "develop_dwh")] == [
        "model moved (models/moved.sql): schema 'somewhere' (as generate_schema_name resolves it)",
        "model orders (models/orders.sql): schema 'marts'",
        "seed rates (seeds/rates.csv): database 'other_db'",
        "snapshot legacy (snapshots/legacy.sql): target_schema 'snapshots'",
    ]


def test_check_one_schema_refuses_with_the_nodes_and_what_to_change(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(_manifest(_node("model", "orders", "develop_dwh_marts", schema="marts"))))
    with pytest.raises(ConfigError) as refused:
        check_one_schema(path, "develop_dwh")
    message = str(refused.value)
    assert "cannot be published as one schema: 1 node(s) build outside the write schema 'develop_dwh'" in message
    assert "model orders (models/orders.sql): schema 'marts'" in message
    assert "Remove their schema or database configuration" in message


def test_a_manifest_parsed_for_another_write_schema_is_stale(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(_manifest(_node("model", "a", "old_dev"), _node("seed", "b", "old_dev"))))
    with pytest.raises(ConfigError, match=r"parsed for schema 'old_dev', not WAP_WRITE_SCHEMA='develop_dwh'"):
        check_one_schema(path, "develop_dwh")
    check_one_schema(path, "old_dev")  # the schema it was parsed for


def test_a_missing_manifest_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no dbt manifest at .*: run `wap dbt prepare`"):
        check_one_schema(tmp_path / "target" / "manifest.json", "develop_dwh")


def test_the_demo_project_is_publishable() -> None:
    manifest = json.loads(prepared_project(load_config()).manifest_path.read_text(encoding="utf-8"))
    assert misplaced_nodes(manifest, "develop_dwh") == []
