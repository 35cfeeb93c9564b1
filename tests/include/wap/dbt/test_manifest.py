from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import PROJECT_DIR
from wap.dbt.manifest import load_primary_keys, primary_keys


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


def test_missing_manifest_means_no_keys(tmp_path: Path) -> None:
    assert load_primary_keys(tmp_path / "manifest.json") == {}


def test_the_projects_published_models_have_their_grain_as_key(tmp_path: Path) -> None:
    keys = load_primary_keys(PROJECT_DIR / "dbt" / "target" / "manifest.json")
    grain = ["region", "kjonn", "alder", "tid"]
    assert keys == {"int_sysselsetting_pivoted": grain, "sysselsetting_forholdstall": grain}
    (tmp_path / "m.json").write_text(json.dumps({"nodes": {}}))
    assert load_primary_keys(tmp_path / "m.json") == {}
