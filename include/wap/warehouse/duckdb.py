"""The embedded warehouse: one DuckDB file, opened through the Apache DuckDB provider's hook."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

    from wap.config import WapConfig
    from wap.warehouse import Query


class DuckDBWarehouse:
    """The DuckDB file named by ``WAP_DUCKDB_PATH``; ``duckdb_default`` supplies options (memory, threads)."""

    kind = "duckdb"

    def __init__(self, config: WapConfig) -> None:
        self.config = config

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the warehouse file, closed on exit. DuckDB allows one writing process."""
        from airflow.providers.duckdb.hooks.duckdb import DuckDBHook

        path = self.config.duckdb_path
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        hook = DuckDBHook(duckdb_conn_id=self.config.duckdb_conn_id, database=str(path), read_only=read_only)
        conn = hook.get_conn()
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def session(self, *, read_only: bool = False) -> Iterator[Query]:
        """A :data:`~wap.warehouse.Query` on one connection: run a statement with bound values, get all rows."""
        with self.connect(read_only=read_only) as conn:
            yield query_of(conn)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A writing connection in one transaction: committed on exit, rolled back on any error."""
        with self.connect() as conn:
            conn.execute("begin transaction")
            try:
                yield conn
            except BaseException:
                conn.execute("rollback")
                raise
            conn.execute("commit")


def query_of(conn: duckdb.DuckDBPyConnection) -> Query:
    """The :data:`~wap.warehouse.Query` of an open connection (in its transaction, if one is open)."""
    return lambda sql, params: conn.execute(sql, list(params)).fetchall()
