"""fakesnow for the tests: its server on 127.0.0.1, reached by the real Snowflake connector over HTTP.

Fixtures (registered by ``tests/conftest.py``):

- ``fakesnow_server`` (session): the server on a free port, as a :class:`FakesnowServer` (connection parameters);
- ``fakesnow_database``: a fresh database name, dropped afterwards (the server keeps one in-memory instance);
- ``snowflake_default``: the Airflow connection ``snowflake_default`` (env ``AIRFLOW_CONN_SNOWFLAKE_DEFAULT``,
  JSON form) pointing at the server, so ``SnowflakeHook`` connects to it; returns the database name.

For fixtures of a wider scope, the same as functions: :func:`new_database_name`, :func:`drop_database` and
:func:`point_snowflake_default` (with a ``pytest.MonkeyPatch.context()``); :func:`record_logins` collects the
authenticator and session parameters (e.g. ``QUERY_TAG``) of every login to the server, dbt's included;
:func:`bulk_load_landing` loads the demo landing data fast.

fakesnow cannot run ``ALTER SCHEMA ... SWAP WITH``, ``RENAME`` or ``CLONE`` and accepts some statements without
effect: never trust it for the publish swap.
"""

from __future__ import annotations

import json
import types
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
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

    def airflow_connection(self, database: str, *, password: str = PASSWORD, **extra: Any) -> str:
        """The JSON form of an Airflow ``snowflake`` connection to the server (for ``AIRFLOW_CONN_<ID>``).

        ``extra``: more extras, e.g. ``warehouse`` and ``role`` (which the Cosmos profile mappings need; fakesnow
        ignores them), ``protocol="http"`` (which ``wap.dbt.cosmos`` passes on to dbt-snowflake), or a
        ``private_key_content`` (then ``password`` is its passphrase; fakesnow accepts any credentials).
        """
        extra = {
            "account": ACCOUNT,
            "database": database,
            "host": self.host,
            "port": self.port,
            "session_parameters": SESSION_PARAMETERS,
            **extra,
        }
        return json.dumps({"conn_type": "snowflake", "login": USER, "password": password, "extra": extra})

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


def new_database_name() -> str:
    """A fresh database name (upper case, as Snowflake stores an unquoted name)."""
    return f"WAP_TEST_{uuid.uuid4().hex[:12].upper()}"


def drop_database(name: str) -> None:
    """Drop a database of the server: fakesnow cannot parse DROP DATABASE; its databases are attached DuckDB
    catalogs."""
    with FakesnowServer.duckdb() as duck:
        duck.execute(f"detach database if exists {name}")


def point_snowflake_default(
    monkeypatch: pytest.MonkeyPatch, server: FakesnowServer, database: str, **connection: Any
) -> None:
    """Point the connection ``snowflake_default`` at ``server`` (``connection``: its password and more extras,
    see :meth:`FakesnowServer.airflow_connection`).

    The hook passes the connection's ``host`` and ``port`` extras to the connector but no ``protocol``, and the
    server speaks plain HTTP: the connector's default protocol (and network timeout) is patched, in this process.
    """
    from snowflake.connector.connection import DEFAULT_CONFIGURATION

    monkeypatch.setenv("AIRFLOW_CONN_SNOWFLAKE_DEFAULT", server.airflow_connection(database, **connection))
    monkeypatch.setitem(DEFAULT_CONFIGURATION, "protocol", ("http", str))
    monkeypatch.setitem(
        DEFAULT_CONFIGURATION, "network_timeout", (NETWORK_TIMEOUT, DEFAULT_CONFIGURATION["network_timeout"][1])
    )


@contextmanager
def record_logins(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Every login to the server while in the block, from any process (dbt's too): its ``authenticator`` (None
    for a password, ``SNOWFLAKE_JWT`` for a key pair) and ``session_parameters`` (e.g. ``QUERY_TAG``).

    fakesnow reads logins and keeps only a few fields; this wraps the ``json.loads`` its login handler parses the
    request with. fakesnow internals (0.12.1): ``fakesnow.server.login_request`` and its module's ``json``.
    """
    import fakesnow.server

    logins: list[dict[str, Any]] = []

    def loads(text: str | bytes) -> Any:
        document = json.loads(text)
        data = document.get("data") if isinstance(document, dict) else None
        if isinstance(data, dict) and "SESSION_PARAMETERS" in data and "LOGIN_NAME" in data:
            logins.append(
                {"authenticator": data.get("AUTHENTICATOR"), "session_parameters": dict(data["SESSION_PARAMETERS"])}
            )
        return document

    with monkeypatch.context() as patch:
        patch.setattr(fakesnow.server, "json", types.SimpleNamespace(loads=loads))
        yield logins


@pytest.fixture
def fakesnow_database(fakesnow_server: FakesnowServer) -> Iterator[str]:
    """A database name of this test's own (upper case, as Snowflake stores an unquoted name); dropped after it."""
    name = new_database_name()
    yield name
    drop_database(name)


@pytest.fixture
def snowflake_default(fakesnow_server: FakesnowServer, fakesnow_database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``snowflake_default`` pointing at fakesnow, for ``SnowflakeHook``; returns the database name.

    The hook passes the connection's ``host`` and ``port`` extras to the connector but no ``protocol``, and the
    server speaks plain HTTP: the connector's default protocol (and network timeout) is patched for the test.
    """
    point_snowflake_default(monkeypatch, fakesnow_server, fakesnow_database)
    return fakesnow_database


# -- the landing data ---------------------------------------------------------------------------------------------


def bulk_load_landing(server: FakesnowServer, database: str, rows: Iterable[Sequence[Any]]) -> int:
    """Load ``rows`` into the landing table of a fakesnow database (created through the server, as
    :func:`tests.snowflake_support.load_landing` creates it) straight into the DuckDB behind it: fast, for a
    test's base data."""
    from tests.snowflake_support import LANDING_SCHEMA, LANDING_TABLE, load_landing
    from wap.local.landing import COLUMNS

    with server.connect(database) as conn:
        load_landing(conn.cursor(), database, [])
    rows = [tuple(row) for row in rows]
    with server.duckdb() as duck:
        marks = ", ".join("?" for _ in COLUMNS)
        duck.executemany(f"insert into {database}.{LANDING_SCHEMA}.{LANDING_TABLE} values ({marks})", rows)
    return len(rows)
