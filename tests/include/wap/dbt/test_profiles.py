"""The profile the bundle supplies on the embedded warehouse: the file, the write schema, duckdb_default's settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from wap.config import load_config
from wap.dbt.cosmos import DuckDBFileProfileMapping
from wap.dbt.profiles import duckdb_settings, duckdb_target, write_profiles
from wap.dbt.project import DbtProject


def test_settings_are_the_connection_extras_the_duckdb_hook_reads() -> None:
    extra = {
        "threads": 2,
        "memory_limit": "4GB",
        "extensions": ["httpfs"],
        "settings": {"preserve_insertion_order": False},
    }
    assert duckdb_settings(extra) == {"threads": 2, "memory_limit": "4GB", "preserve_insertion_order": False}
    assert duckdb_settings({}) == {}


def test_the_target_builds_into_the_write_schema_of_the_warehouse_file(tmp_path: Path) -> None:
    config = load_config({"WAP_DUCKDB_PATH": str(tmp_path / "w.duckdb"), "WAP_WRITE_SCHEMA": "staging_area"})
    assert duckdb_target(config) == {
        "type": "duckdb",
        "path": str(tmp_path / "w.duckdb"),
        "schema": "staging_area",
        "threads": 4,
    }
    assert duckdb_target(config, {"threads": 2}, schema="dwh")["schema"] == "dwh"
    assert duckdb_target(config, {"threads": 2})["settings"] == {"threads": 2}


def test_write_profiles_names_the_profile_the_project_asks_for(tmp_path: Path) -> None:
    config = load_config({"WAP_DUCKDB_PATH": str(tmp_path / "w.duckdb")})
    project = DbtProject(path=tmp_path, name="jaffle_shop", profile="shop")
    path = write_profiles(config, project, tmp_path / "profiles")
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert list(document) == ["shop"]
    assert document["shop"]["target"] == "duckdb"
    assert document["shop"]["outputs"]["duckdb"]["path"] == str(tmp_path / "w.duckdb")
    assert document["shop"]["outputs"]["duckdb"]["schema"] == "develop_dwh"


def mapping(tmp_path: Path) -> DuckDBFileProfileMapping:
    return DuckDBFileProfileMapping(
        conn_id="duckdb_default",
        profile_args={"path": str(tmp_path / "w.duckdb"), "schema": "develop_dwh", "threads": 1},
    )


def test_the_cosmos_mapping_reads_the_settings_from_the_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = {"conn_type": "duckdb", "extra": {"threads": 2, "memory_limit": "4GB"}}
    monkeypatch.setenv("AIRFLOW_CONN_DUCKDB_DEFAULT", json.dumps(connection))
    profile = mapping(tmp_path).profile
    assert profile == {
        "type": "duckdb",
        "threads": 1,
        "path": str(tmp_path / "w.duckdb"),
        "schema": "develop_dwh",
        "settings": {"threads": 2, "memory_limit": "4GB"},
    }


def test_without_the_connection_duckdb_keeps_its_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_DUCKDB_DEFAULT", raising=False)
    profile = mapping(tmp_path).profile
    assert "settings" not in profile and profile["path"] == str(tmp_path / "w.duckdb")
    assert mapping(tmp_path).can_claim_connection()
