"""Snowflake: the database named by ``WAP_DATABASE``, reached through the Snowflake provider's hook.

Both schemas live in that database. Configured names (database, schemas) are validated identifiers, resolved as
Snowflake resolves them unquoted (upper case), which is how dbt-snowflake creates them. Values are bound through
the connector's paramstyle, ``pyformat`` (``%s``), the one ``SnowflakeHook`` connections use.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING, Any

from wap.config import ConfigError, validate_identifier

if TYPE_CHECKING:
    from snowflake.connector import SnowflakeConnection

    from wap.config import WapConfig
    from wap.warehouse import Query


class SnowflakeWarehouse:
    """The database ``WAP_DATABASE`` on the account of the ``snowflake_default`` connection."""

    kind = "snowflake"

    def __init__(self, config: WapConfig) -> None:
        if config.snowflake_database is None:
            raise ConfigError("WAP_WAREHOUSE='snowflake' needs WAP_DATABASE, the database holding both schemas")
        self.config = config
        self.database = validate_identifier(config.snowflake_database, "WAP_DATABASE")

    @contextmanager
    def connect(self) -> Iterator[SnowflakeConnection]:
        """A connection of ``snowflake_default`` with ``WAP_DATABASE`` as its database, closed on exit."""
        from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

        hook = SnowflakeHook(snowflake_conn_id=self.config.snowflake_conn_id, database=self.database)
        conn = hook.get_conn()
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def session(self, *, read_only: bool = False) -> Iterator[Query]:
        """A :data:`~wap.warehouse.Query` on one connection: run a statement with bound values, get all rows.

        ``read_only`` is for the interface's sake: on Snowflake the role's grants decide what a session may write.
        """
        with self.connect() as conn, closing(conn.cursor()) as cursor:
            yield lambda sql, params: fetch_all(cursor, sql, params)


def fetch_all(cursor: Any, sql: str, params: Sequence[Any]) -> list[tuple]:
    """Run ``sql`` with ``params`` bound; without values the statement is sent as is (no ``%`` interpolation)."""
    if params:
        cursor.execute(_escape_quoted_percent(sql), list(params))
    else:
        cursor.execute(sql)
    return cursor.fetchall()


def _escape_quoted_percent(sql: str) -> str:
    """Double each ``%`` inside quoted identifiers and string literals: with values, ``pyformat`` interpolates the
    whole statement, and a catalog name may hold a ``%`` (``"growth %"``). Doubled quotes close and reopen."""
    out, open_quote = [], ""
    for char in sql:
        if open_quote == "" and char in "\"'":
            open_quote = char
        elif char == open_quote:
            open_quote = ""
        out.append("%%" if char == "%" and open_quote else char)
    return "".join(out)
