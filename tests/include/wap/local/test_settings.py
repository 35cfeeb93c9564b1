from __future__ import annotations

import pytest

from tests.conftest import PROJECT_DIR
from wap.local.settings import ConnectionSetting, PoolSetting, SettingsError, parse_settings


def test_the_shipped_file_holds_the_embedded_defaults_and_no_secrets() -> None:
    settings = parse_settings((PROJECT_DIR / "airflow_settings.yaml").read_text())
    assert [conn.conn_id for conn in settings.connections] == ["duckdb_default"]
    assert settings.connections[0].conn_type == "duckdb"
    assert all(conn.password is None for conn in settings.connections)
    assert settings.pools == (PoolSetting("wap_warehouse", 1, settings.pools[0].description),)
    assert settings.variables == ()


def test_astro_format_with_templates_skipped() -> None:
    settings = parse_settings(
        """
airflow:
  connections:
    - conn_id: snowflake_default
      conn_type: snowflake
      conn_login: svc
      conn_password: secret
      conn_port: 443
      conn_extra:
        account: org-acct
    - conn_id:
      conn_type:
  pools:
    - pool_name: p
      pool_slot: 3
  variables:
    - variable_name: a
      variable_value: 1
    - variable_name:
      variable_value:
"""
    )
    assert settings.connections == (
        ConnectionSetting(
            "snowflake_default", "snowflake", login="svc", password="secret", port=443, extra={"account": "org-acct"}
        ),
    )
    assert settings.pools == (PoolSetting("p", 3),)
    assert settings.variables == (("a", "1"),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("airflow:\n  connections:\n    - conn_id: x\n", "connection 'x' has no conn_type"),
        ("airflow:\n  pools:\n    - pool_name: p\n      pool_slot: many\n", "pool 'p' needs pool_slot"),
        ("airflow:\n  pools: {a: 1}\n", "airflow.pools must be a list"),
        ("airflow: [1]\n", "must hold a mapping"),
    ],
)
def test_malformed_files_get_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse_settings(text)


def test_empty_file_is_empty_settings() -> None:
    assert parse_settings("") == parse_settings("airflow:\n")
