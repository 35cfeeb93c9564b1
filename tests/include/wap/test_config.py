from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from wap.config import ConfigError, WapConfig, load_config, parse_duration, validate_identifier


def test_defaults_match_the_documented_names() -> None:
    config = load_config({})
    assert config.warehouse == "duckdb"
    assert config.write_schema == "develop_dwh"
    assert config.prod_schema == "dwh"
    assert config.approval_variable == "wap_approval__wap_dwh"
    assert config.warehouse_conn_id == "duckdb_default"
    assert config.snowflake_conn_id == "snowflake_default"
    assert (config.slack_webhook_conn_id, config.slack_api_conn_id) == ("slack_default", "slack_api_default")
    assert config.review_timeout == timedelta(hours=24)
    assert config.duckdb_path.name == "warehouse.duckdb"
    assert config.dbt_manifest_path == config.dbt_project_dir / "target" / "manifest.json"


def test_environment_overrides(tmp_path: Path) -> None:
    config = load_config(
        {
            "WAP_WAREHOUSE": "Snowflake",
            "WAP_DATABASE": "ANALYTICS",
            "WAP_WRITE_SCHEMA": "STAGING_DWH",
            "WAP_PROD_SCHEMA": "DWH",
            "WAP_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
            "WAP_REVIEW_TIMEOUT": "90m",
            "WAP_DAG_ID": "wap_sales",
        }
    )
    assert config.warehouse == "snowflake"
    assert config.warehouse_conn_id == "snowflake_default"
    assert (config.write_schema, config.prod_schema) == ("STAGING_DWH", "DWH")
    assert config.duckdb_path == tmp_path / "w.duckdb"
    assert config.review_timeout == timedelta(minutes=90)
    assert config.approval_variable == "wap_approval__wap_sales"


def test_empty_values_fall_back_to_defaults() -> None:
    assert load_config({"WAP_WRITE_SCHEMA": "  ", "WAP_WAREHOUSE": ""}) == load_config({})


@pytest.mark.parametrize(
    "bad",
    ["develop_dwh; drop schema dwh", "dev-dwh", "1dwh", "dwh.x", '"dwh"', "dwh ", "", "a" * 256, "dwh$", "dwh\n"],
)
def test_invalid_identifiers_are_refused_by_name(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"WAP_PROD_SCHEMA=.* is not a valid SQL identifier"):
        WapConfig(prod_schema=bad)


@pytest.mark.parametrize("good", ["dwh", "DEVELOP_DWH", "_x", "a1_b2", "a" * 255])
def test_valid_identifiers(good: str) -> None:
    assert validate_identifier(good, "X") == good


def test_an_invalid_identifier_from_the_environment_names_the_variable() -> None:
    with pytest.raises(ConfigError) as error:
        load_config({"WAP_WRITE_SCHEMA": "develop dwh"})
    assert str(error.value).startswith("WAP_WRITE_SCHEMA='develop dwh' is not a valid SQL identifier")


def test_write_and_production_schemas_must_differ() -> None:
    with pytest.raises(ConfigError, match="must differ"):
        load_config({"WAP_WRITE_SCHEMA": "DWH", "WAP_PROD_SCHEMA": "dwh"})


def test_unknown_warehouse_is_refused() -> None:
    with pytest.raises(ConfigError, match="WAP_WAREHOUSE='postgres' is not a known warehouse"):
        load_config({"WAP_WAREHOUSE": "postgres"})


def test_snowflake_needs_a_database() -> None:
    with pytest.raises(ConfigError, match="needs WAP_DATABASE"):
        load_config({"WAP_WAREHOUSE": "snowflake"})
    with pytest.raises(ConfigError, match="WAP_DATABASE='my-db'"):
        load_config({"WAP_WAREHOUSE": "snowflake", "WAP_DATABASE": "my-db"})


def test_bad_dag_id_is_refused() -> None:
    with pytest.raises(ConfigError, match="WAP_DAG_ID"):
        load_config({"WAP_DAG_ID": "wap dwh"})


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("24h", 86400), ("2d", 172800), (" 24H ", 86400)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text, "X") == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["0", "-5m", "1.5h", "soon", "24 hours", ""])
def test_bad_durations_are_refused_by_name(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"WAP_REVIEW_TIMEOUT=.* is not a duration"):
        parse_duration(bad, "WAP_REVIEW_TIMEOUT")
