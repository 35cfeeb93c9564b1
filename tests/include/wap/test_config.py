from __future__ import annotations

import re
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


# -- the README's configuration reference -----------------------------------------------------------------------
README = Path(__file__).resolve().parents[3] / "README.md"

# A bad value of every validated setting, and the start of the message load_config refuses it with: the text
# the README's "Configuration" table quotes.
BAD_VALUES = [
    ({"WAP_WAREHOUSE": "postgres"}, "WAP_WAREHOUSE='postgres' is not a known warehouse"),
    ({"WAP_WAREHOUSE": "snowflake"}, "WAP_WAREHOUSE='snowflake' needs WAP_DATABASE"),
    ({"WAP_WAREHOUSE": "snowflake", "WAP_DATABASE": "my-db"}, "WAP_DATABASE='my-db' is not a valid SQL identifier"),
    ({"WAP_WRITE_SCHEMA": "develop dwh"}, "WAP_WRITE_SCHEMA='develop dwh' is not a valid SQL identifier"),
    ({"WAP_PROD_SCHEMA": "dwh.x"}, "WAP_PROD_SCHEMA='dwh.x' is not a valid SQL identifier"),
    ({"WAP_WRITE_SCHEMA": "DWH"}, "WAP_WRITE_SCHEMA and WAP_PROD_SCHEMA are both 'DWH': the write schema must differ"),
    ({"WAP_LANDING_DATABASE": "raw-db"}, "WAP_LANDING_DATABASE='raw-db' is not a valid SQL identifier"),
    ({"WAP_DAG_ID": "wap dwh"}, "WAP_DAG_ID='wap dwh' is not a valid DAG id"),
    ({"WAP_REVIEW_TIMEOUT": "1 day"}, "WAP_REVIEW_TIMEOUT='1 day' is not a duration"),
    ({"WAP_APPROVAL_POKE_INTERVAL": "0"}, "WAP_APPROVAL_POKE_INTERVAL='0' is not a duration"),
    ({"WAP_GRANTS_ON_SWAP": "Copy"}, "WAP_GRANTS_ON_SWAP='Copy' must be 'block' or 'copy'"),
    ({"WAP_WRITE_MODE": "fast"}, "WAP_WRITE_MODE='fast' is not a write mode"),
    ({"WAP_SAMPLE_ROWS": "many"}, "WAP_SAMPLE_ROWS='many' must be a whole number from 0 to 100"),
    ({"WAP_SAMPLE_ROWS": "101"}, "WAP_SAMPLE_ROWS=101 must be a whole number from 0 to 100"),
    ({"WAP_ANNOUNCE_UNCHANGED": "sometimes"}, "WAP_ANNOUNCE_UNCHANGED='sometimes' must be true or false"),
    ({"WAP_SNOWFLAKE_ACCOUNT": "my org/acct"}, "WAP_SNOWFLAKE_ACCOUNT='my org/acct' is not a Snowflake account"),
    ({"WAP_HISTORY_SCHEMA": "wap-history"}, "WAP_HISTORY_SCHEMA='wap-history' is not a valid SQL identifier"),
    ({"WAP_HISTORY_SCHEMA": "DWH"}, "WAP_HISTORY_SCHEMA='DWH' is one of the swapped schemas"),
    ({"WAP_HISTORY_CYCLES": "0"}, "WAP_HISTORY_CYCLES=0 must be a whole number from 1 to 10000"),
    ({"WAP_HISTORY_CYCLES": "a month"}, "WAP_HISTORY_CYCLES='a month' must be a whole number from 1 to 10000"),
]


class _RecordingEnv(dict):
    """An environment that records which variables were read."""

    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def get(self, key, default=None):  # type: ignore[no-untyped-def]
        self.read.add(key)
        return super().get(key, default)


def _configuration_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Configuration\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


@pytest.mark.parametrize(("env", "message"), BAD_VALUES, ids=[message.split(" ")[0] for _, message in BAD_VALUES])
def test_a_bad_value_gets_the_message_the_readme_quotes(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(env)
    assert str(error.value).startswith(message)
    assert message in _configuration_section(), f"the README's Configuration table should quote: {message}"


def test_the_readme_lists_every_setting_load_config_reads() -> None:
    env = _RecordingEnv()
    load_config(env)
    rows = [line for line in _configuration_section().splitlines() if line.startswith("| `WAP_")]
    documented = {name for row in rows for name in re.findall(r"`(WAP_[A-Z_]+)`", row.split(" | ")[0])}
    assert env.read == documented, (
        f"read but not in the README table: {sorted(env.read - documented)}; "
        f"in the table but never read: {sorted(documented - env.read)}"
    )


def test_settings_without_a_check_are_taken_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = load_config(
        {
            "WAP_DUCKDB_PATH": "~/w.duckdb",
            "WAP_DBT_PROJECT_DIR": "project/dbt",
            "WAP_SLACK_OUTBOX": "outbox.jsonl",
            "WAP_DBT_EXECUTABLE": "/opt/dbt/bin/dbt",
            "WAP_DUCKDB_CONN_ID": "my_duckdb",
            "WAP_SNOWFLAKE_CONN_ID": "my_snowflake",
            "WAP_SLACK_CONN_ID": "my_webhook",
            "WAP_SLACK_API_CONN_ID": "my_bot",
            "WAP_WAREHOUSE_POOL": "my_pool",
            "WAP_SLACK_CHANNEL": "#my-reviews",
        }
    )
    assert config.duckdb_path == tmp_path / "home" / "w.duckdb"  # ~ expanded
    assert config.dbt_project_dir == tmp_path / "project" / "dbt"  # relative to the working directory
    assert config.slack_outbox == tmp_path / "outbox.jsonl"
    assert config.dbt_executable == "/opt/dbt/bin/dbt"
    assert (config.duckdb_conn_id, config.snowflake_conn_id) == ("my_duckdb", "my_snowflake")
    assert (config.slack_webhook_conn_id, config.slack_api_conn_id) == ("my_webhook", "my_bot")
    assert (config.warehouse_pool, config.warehouse_task_pool, config.slack_channel) == (
        "my_pool",
        "my_pool",
        "#my-reviews",
    )


def test_the_pool_applies_to_duckdb_only() -> None:
    assert load_config({}).warehouse_task_pool == "wap_warehouse"
    snowflake = load_config({"WAP_WAREHOUSE": "snowflake", "WAP_DATABASE": "ANALYTICS", "WAP_WAREHOUSE_POOL": "x"})
    assert snowflake.warehouse_task_pool == "default_pool"


def test_the_write_mode_is_one_build_unless_per_model_is_asked_for() -> None:
    assert load_config({}).write_mode == "one_build"
    assert load_config({"WAP_WRITE_MODE": "Per_Model"}).write_mode == "per_model"


def test_numbers_and_durations_from_the_environment() -> None:
    config = load_config({"WAP_SAMPLE_ROWS": "0", "WAP_APPROVAL_POKE_INTERVAL": "2s", "WAP_GRANTS_ON_SWAP": "copy"})
    assert (config.sample_rows, config.approval_poke_interval, config.grants_on_swap) == (
        0,
        timedelta(seconds=2),
        "copy",
    )


def test_policy_file_is_in_the_dbt_project_and_can_be_turned_off(tmp_path: Path) -> None:
    project = {"WAP_DBT_PROJECT_DIR": str(tmp_path)}
    assert load_config(project).policy_path == tmp_path / "wap_policy.yml"
    assert load_config({**project, "WAP_POLICY_FILE": "policies/daily.yml"}).policy_path == (
        tmp_path / "policies" / "daily.yml"
    )
    assert load_config({**project, "WAP_POLICY_FILE": str(tmp_path / "abs.yml")}).policy_path == tmp_path / "abs.yml"
    assert load_config({**project, "WAP_POLICY_FILE": "None"}).policy_path is None
