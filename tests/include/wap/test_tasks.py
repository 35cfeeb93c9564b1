"""The preflight task: malformed settings, a missing connection or warehouse fail the run before anything is
written, with a message that says what to fix."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from wap import tasks


def test_preflight_passes_on_a_reachable_warehouse(monkeypatch, tmp_path) -> None:
    import duckdb

    path = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(path)).close()
    monkeypatch.setenv("WAP_DUCKDB_PATH", str(path))
    assert tasks.preflight()["write_schema"] == "develop_dwh"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"WAP_WRITE_SCHEMA": "develop-dwh"},
            "WAP preflight: WAP_WRITE_SCHEMA='develop-dwh' is not a valid SQL identifier",
        ),
        ({"WAP_WAREHOUSE": "bigquery"}, "WAP preflight: WAP_WAREHOUSE='bigquery' is not a known warehouse"),
        ({"WAP_WAREHOUSE": "snowflake"}, "WAP_WAREHOUSE='snowflake' needs WAP_DATABASE"),
        (
            {"WAP_WAREHOUSE": "snowflake", "WAP_DATABASE": "ANALYTICS", "WAP_SNOWFLAKE_CONN_ID": "no_such_connection"},
            "WAP preflight: cannot reach the snowflake warehouse through connection 'no_such_connection'",
        ),
    ],
)
def test_preflight_fails_clearly_before_anything_is_written(monkeypatch, tmp_path, env, message) -> None:
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("WAP_DUCKDB_PATH", str(path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(AirflowFailException, match=message.replace("(", r"\(")):
        tasks.preflight()
    assert not path.exists()  # nothing was created, let alone written


def test_preflight_refuses_a_missing_embedded_warehouse(monkeypatch, tmp_path) -> None:
    path = tmp_path / "nowhere" / "warehouse.duckdb"
    monkeypatch.setenv("WAP_DUCKDB_PATH", str(path))
    with pytest.raises(AirflowFailException, match="the file does not exist"):
        tasks.preflight()
    assert not path.parent.exists()
