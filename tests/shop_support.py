"""The shop test project (tests/dbt_projects/shop) and its landing data, batch by batch.

The landing schema ``shop_landing`` (outside the write schema) holds the newest batch only, as many landing
tables do: ``order_batch`` is replaced by each load, and ``customer_status`` holds the customers' current status
(the snapshot ``customer_status_history`` keeps its history).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from tests.conftest import PROJECT_DIR

SHOP = PROJECT_DIR / "tests" / "dbt_projects" / "shop"
SHOP_UTILS = PROJECT_DIR / "tests" / "dbt_projects" / "shop_utils"

#: The relations the project builds (not the ephemeral model), by name.
RELATIONS = (
    "raw_customers",
    "raw_orders",
    "stg_customers",
    "stg_orders",
    "stg_large_orders",
    "customer_orders",
    "orders_history",
    "order_summary_v1",
    "order_summary_v2",
    "customer_status_history",
)

#: The loads, in order: orders (order id, customer id, amount in cents) and every customer's status.
BATCHES: dict[int, dict[str, list[tuple]]] = {
    1: {"orders": [(100, 1, 1250), (101, 2, 990)], "status": [(1, "new"), (2, "new"), (3, "new")]},
    2: {"orders": [(102, 1, 4000), (103, 3, 150)], "status": [(1, "gold"), (2, "new"), (3, "new")]},
    3: {"orders": [(104, 2, 700)], "status": [(1, "gold"), (2, "silver"), (3, "lapsed")]},
}
#: A load that fails orders_history's unique test (one order twice): the build must stop there.
BAD_BATCH = {"orders": [(105, 1, 100), (105, 1, 100)], "status": [(1, "gold"), (2, "silver"), (3, "lapsed")]}


def load_batch(duckdb_path: Path, batch: int, data: dict[str, list[tuple]] | None = None) -> None:
    """Replace the landing tables with load ``batch`` (``data``, default :data:`BATCHES`)."""
    data = data or BATCHES[batch]
    with duckdb.connect(str(duckdb_path)) as conn:
        conn.execute("create schema if not exists shop_landing")
        conn.execute(
            "create or replace table shop_landing.order_batch "
            "(batch integer, order_id integer, customer_id integer, amount_cents integer)"
        )
        conn.executemany(
            "insert into shop_landing.order_batch values (?, ?, ?, ?)", [(batch, *o) for o in data["orders"]]
        )
        conn.execute("create or replace table shop_landing.customer_status (customer_id integer, status varchar)")
        conn.executemany("insert into shop_landing.customer_status values (?, ?)", data["status"])


def copy_shop(folder: Path) -> Path:
    """A copy of the shop project (and its local package beside it, as ``../shop_utils`` expects) in ``folder``:
    for a plain dbt build to compare with, which installs packages and writes ``target/`` into its project."""
    import shutil

    for source in (SHOP, SHOP_UTILS):
        shutil.copytree(source, folder / source.name, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs"))
    return folder / SHOP.name


def load_batch_sql(cursor: Any, database: str, batch: int) -> None:
    """Replace the landing tables with load ``batch`` through a Snowflake cursor (fakesnow or a real account)."""
    data = BATCHES[batch]
    cursor.execute(f"create schema if not exists {database}.shop_landing")
    cursor.execute(
        f"create or replace table {database}.shop_landing.order_batch "
        "(batch integer, order_id integer, customer_id integer, amount_cents integer)"
    )
    values = ", ".join(f"({batch}, {order}, {customer}, {cents})" for order, customer, cents in data["orders"])
    cursor.execute(f"insert into {database}.shop_landing.order_batch values {values}")
    cursor.execute(
        f"create or replace table {database}.shop_landing.customer_status (customer_id integer, status varchar)"
    )
    values = ", ".join(f"({customer}, '{status}')" for customer, status in data["status"])
    cursor.execute(f"insert into {database}.shop_landing.customer_status values {values}")


def relation_rows(path: Path, schema: str, name: str) -> list[tuple]:
    """The relation's rows, sorted, without dbt's snapshot columns (timestamps of the run that built them)."""
    with duckdb.connect(str(path), read_only=True) as conn:
        columns = [
            column
            for (column,) in conn.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
                "order by ordinal_position",
                [schema, name],
            ).fetchall()
            if not column.startswith("dbt_")
        ]
        select = ", ".join(f'"{column}"' for column in columns)
        return sorted(conn.execute(f'select {select} from "{schema}"."{name}"').fetchall(), key=repr)
