"""fakesnow for the tests: its server on 127.0.0.1, reached by the real Snowflake connector over HTTP.

Fixtures (registered by ``tests/conftest.py``):

- ``fakesnow_server`` (session): the server on a free port, as a :class:`FakesnowServer` (connection parameters);
- ``fakesnow_database``: a fresh database name, dropped afterwards (the server keeps one in-memory instance);
- ``snowflake_default``: the Airflow connection ``snowflake_default`` (env ``AIRFLOW_CONN_SNOWFLAKE_DEFAULT``,
  JSON form) pointing at the server, so ``SnowflakeHook`` connects to it; returns the database name.

fakesnow cannot run ``ALTER SCHEMA ... SWAP WITH``, ``RENAME`` or ``CLONE`` and accepts some statements without
effect: never trust it for the publish swap.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import duckdb
    from snowflake.connector import SnowflakeConnection

HOST = "127.0.0.1"
# What fakesnow accepts (any user and password do) and what keeps a failing test fast.
USER, PASSWORD, ACCOUNT = "fake", "fakesnow-password", "fakesnow"
SESSION_PARAMETERS = {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False}
NETWORK_TIMEOUT = 5  # seconds: the connector retries a failed request until then


@dataclass(frozen=True)
class FakesnowServer:
    """A running fakesnow server: where it listens and how the connector reaches it."""

    host: str
    port: int

    def connect_kwargs(self, database: str | None = None) -> dict[str, Any]:
        """Keyword arguments of ``snowflake.connector.connect`` for this server (plain HTTP)."""
        kwargs: dict[str, Any] = {
            "user": USER,
            "password": PASSWORD,
            "account": ACCOUNT,
            "host": self.host,
            "port": self.port,
            "protocol": "http",
            "session_parameters": dict(SESSION_PARAMETERS),
            "network_timeout": NETWORK_TIMEOUT,
        }
        if database is not None:
            kwargs["database"] = database
        return kwargs

    def connect(self, database: str | None = None) -> SnowflakeConnection:
        """A real ``snowflake.connector`` connection to the server (fakesnow creates ``database`` if new)."""
        import snowflake.connector

        return snowflake.connector.connect(**self.connect_kwargs(database))

    def airflow_connection(self, database: str) -> str:
        """The JSON form of an Airflow ``snowflake`` connection to the server (for ``AIRFLOW_CONN_<ID>``)."""
        extra = {
            "account": ACCOUNT,
            "database": database,
            "host": self.host,
            "port": self.port,
            "session_parameters": SESSION_PARAMETERS,
        }
        return json.dumps({"conn_type": "snowflake", "login": USER, "password": PASSWORD, "extra": extra})

    @staticmethod
    def duckdb() -> duckdb.DuckDBPyConnection:
        """A cursor on the DuckDB instance behind the server (it runs in this process), to load bulk test data.

        fakesnow runs every statement through its SQL transpiler, about 1.7 ms per row of an INSERT; tests load
        large tables here instead. Its databases are DuckDB catalogs named in upper case. fakesnow internals
        (0.12.1): ``fakesnow.server.shared_fs``.
        """
        import fakesnow.server

        return fakesnow.server.shared_fs.duck_conn.cursor()


def pytest_configure(config: pytest.Config) -> None:
    # fakesnow 0.12.1 reads results with a DuckDB call that DuckDB 2.0 warns about, once per statement.
    config.addinivalue_line("filterwarnings", "ignore:Arrow output on a DB-API result:UserWarning")


@pytest.fixture(scope="session")
def fakesnow_server() -> Iterator[FakesnowServer]:
    """fakesnow's server on 127.0.0.1, on a free port, for the whole test session."""
    import fakesnow

    with fakesnow.server(host=HOST) as kwargs:
        yield FakesnowServer(host=kwargs["host"], port=int(kwargs["port"]))


@pytest.fixture
def fakesnow_database(fakesnow_server: FakesnowServer) -> Iterator[str]:
    """A database name of this test's own (upper case, as Snowflake stores an unquoted name); dropped after it."""
    name = f"WAP_TEST_{uuid.uuid4().hex[:12].upper()}"
    yield name
    # fakesnow cannot parse DROP DATABASE; its databases are attached DuckDB catalogs.
    with fakesnow_server.duckdb() as duck:
        duck.execute(f"detach database if exists {name}")


@pytest.fixture
def snowflake_default(fakesnow_server: FakesnowServer, fakesnow_database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``snowflake_default`` pointing at fakesnow, for ``SnowflakeHook``; returns the database name.

    The hook passes the connection's ``host`` and ``port`` extras to the connector but no ``protocol``, and the
    server speaks plain HTTP: the connector's default protocol (and network timeout) is patched for the test.
    """
    from snowflake.connector.connection import DEFAULT_CONFIGURATION

    monkeypatch.setenv("AIRFLOW_CONN_SNOWFLAKE_DEFAULT", fakesnow_server.airflow_connection(fakesnow_database))
    monkeypatch.setitem(DEFAULT_CONFIGURATION, "protocol", ("http", str))
    monkeypatch.setitem(
        DEFAULT_CONFIGURATION, "network_timeout", (NETWORK_TIMEOUT, DEFAULT_CONFIGURATION["network_timeout"][1])
    )
    return fakesnow_database
