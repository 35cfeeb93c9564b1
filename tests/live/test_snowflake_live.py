"""Opt-in: the Snowflake path on a real account, for what fakesnow cannot run (the swap, SHOW GRANTS, grants).

Runs when the environment names an account (otherwise every test is skipped, with the reason)::

    SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER, SNOWFLAKE_DATABASE, SNOWFLAKE_WAREHOUSE, SNOWFLAKE_ROLE
    and SNOWFLAKE_PASSWORD, or SNOWFLAKE_PRIVATE_KEY_FILE (a PKCS#8 PEM file) or SNOWFLAKE_PRIVATE_KEY (its text),
    with SNOWFLAKE_PRIVATE_KEY_PASSPHRASE if the key is encrypted; optional SNOWFLAKE_HOST, SNOWFLAKE_PORT and
    SNOWFLAKE_PROTOCOL (passed on as the connection's extras).

They become the connection ``snowflake_default`` (``AIRFLOW_CONN_SNOWFLAKE_DEFAULT``) for this module only. In
``SNOWFLAKE_DATABASE`` the suite creates throw-away schemas with unique names, ``WAP_LIVE_<id>_DEVELOP`` and
``WAP_LIVE_<id>_DWH``, and the landing schema ``SSB`` that the dbt source names (it skips if ``SSB`` exists
already: it never touches a schema it did not create), and drops them all afterwards. The role needs USAGE on the
warehouse and the database, CREATE SCHEMA on the database, and may grant on the schemas it owns (to PUBLIC).

A WAP cycle as wap_dwh runs it, with its own code: production built through 2021, the 2022 load, the write stage
(Cosmos, the mapped profile, the query tag), the audit, publish by ``SnowflakePublishOperator`` (guards, grants,
``ALTER SCHEMA ... SWAP WITH``), a retry, then a second cycle and the rollback.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.snowflake_support import (
    LANDING_SCHEMA,
    MART,
    ROWS_A_YEAR,
    dbt_build,
    load_landing,
    other_review_id,
    publish_task,
)
from wap.audit.dialect import DIALECTS, SnowflakeDialect
from wap.audit.stage import run_audit
from wap.audit.swap_safety import schema_grants
from wap.config import WapConfig, load_config
from wap.local.landing import FIRST_YEAR, LAST_YEAR, PRODUCTION_THROUGH, generate_rows
from wap.publish.guards import PublishRefused, read_marker
from wap.publish.snowflake import SnowflakePublisher
from wap.warehouse.snowflake import SnowflakeWarehouse

REQUIRED = ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER", "SNOWFLAKE_DATABASE", "SNOWFLAKE_WAREHOUSE", "SNOWFLAKE_ROLE")
CREDENTIALS = ("SNOWFLAKE_PASSWORD", "SNOWFLAKE_PRIVATE_KEY_FILE", "SNOWFLAKE_PRIVATE_KEY")


def named(warehouse: SnowflakeWarehouse, *identifiers: str) -> str:
    return SnowflakeDialect.qualified(warehouse.database, *identifiers)


def missing_settings(env: dict[str, str] | os._Environ = os.environ) -> list[str]:
    """The variables the suite still needs (empty: it runs)."""
    missing = [name for name in REQUIRED if not env.get(name)]
    if not any(env.get(name) for name in CREDENTIALS):
        missing.append(" or ".join(CREDENTIALS))
    return missing


pytestmark = pytest.mark.live

RUN_A = "manual__live_a"
RUN_B = "manual__live_b"
YEARS = LAST_YEAR - FIRST_YEAR + 1
PRODUCTION_ROWS = (PRODUCTION_THROUGH - FIRST_YEAR + 1) * ROWS_A_YEAR


def snowflake_default(env: dict[str, str] | os._Environ = os.environ) -> str:
    """The JSON form of the Airflow connection the suite's variables describe."""
    extra: dict[str, Any] = {
        "account": env["SNOWFLAKE_ACCOUNT"],
        "database": env["SNOWFLAKE_DATABASE"],
        "warehouse": env["SNOWFLAKE_WAREHOUSE"],
        "role": env["SNOWFLAKE_ROLE"],
    }
    for name in ("host", "port", "protocol"):  # optional: a private-link host, say
        if env.get(f"SNOWFLAKE_{name.upper()}"):
            extra[name] = env[f"SNOWFLAKE_{name.upper()}"]
    password = env.get("SNOWFLAKE_PASSWORD")
    if env.get("SNOWFLAKE_PRIVATE_KEY_FILE"):
        extra["private_key_file"] = str(Path(env["SNOWFLAKE_PRIVATE_KEY_FILE"]).expanduser())
        password = env.get("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE")  # the hook's and Cosmos' convention
    elif env.get("SNOWFLAKE_PRIVATE_KEY"):
        extra["private_key_content"] = base64.b64encode(env["SNOWFLAKE_PRIVATE_KEY"].encode()).decode()
        password = env.get("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE")
    connection: dict[str, Any] = {"conn_type": "snowflake", "login": env["SNOWFLAKE_USER"], "extra": extra}
    if password:
        connection["password"] = password
    return json.dumps(connection)


@dataclass
class Live:
    monkeypatch: pytest.MonkeyPatch
    database: str
    write_schema: str
    prod_schema: str

    def config(self, **env: str) -> WapConfig:
        """The configuration, also set in the environment (the publish operator reads it there)."""
        settings = {
            "WAP_WAREHOUSE": "snowflake",
            "WAP_DATABASE": self.database,
            "WAP_WRITE_SCHEMA": self.write_schema,
            "WAP_PROD_SCHEMA": self.prod_schema,
            **env,
        }
        for name, value in settings.items():
            self.monkeypatch.setenv(name, value)
        return load_config()


def execute(warehouse: SnowflakeWarehouse, sql: str, params: list[Any] | None = None) -> list[tuple]:
    with warehouse.session() as query:
        return query(sql, params or [])


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    """``snowflake_default`` on the account; the throw-away schemas' names; every schema it made dropped after."""
    missing = missing_settings()
    if missing:
        pytest.skip(f"live Snowflake suite (opt-in): set {', '.join(missing)} to run it against a real account")
    suffix = uuid.uuid4().hex[:8].upper()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("AIRFLOW_CONN_SNOWFLAKE_DEFAULT", snowflake_default())
        state = Live(
            monkeypatch, os.environ["SNOWFLAKE_DATABASE"], f"WAP_LIVE_{suffix}_DEVELOP", f"WAP_LIVE_{suffix}_DWH"
        )
        warehouse = SnowflakeWarehouse(state.config())
        schemas = "select count(*) from information_schema.schemata where schema_name = %s"
        (exists,) = execute(warehouse, schemas, [LANDING_SCHEMA.upper()])[0]
        if exists:
            pytest.skip(
                f"{state.database} has a schema SSB already; the suite creates (and drops) its own landing schema "
                "SSB, the dbt source's: point SNOWFLAKE_DATABASE at a scratch database (or drop an SSB that a "
                "killed run of this suite left behind)"
            )
        created = [LANDING_SCHEMA, state.write_schema, state.prod_schema]
        try:
            yield state
        finally:
            for schema in created:
                execute(warehouse, f"drop schema if exists {named(warehouse, schema)} cascade")


def production_marker(warehouse: SnowflakeWarehouse, schema: str) -> Any:
    with warehouse.session(read_only=True) as query:
        return read_marker(query, DIALECTS["snowflake"], schema)


def tagged_queries(warehouse: SnowflakeWarehouse, run_id: str, timeout: float = 60) -> int:
    """Queries of this user whose query tag names ``run_id`` (the query history may lag a little)."""
    deadline = time.monotonic() + timeout
    while True:
        (count,) = execute(
            warehouse,
            "select count(*) from table(information_schema.query_history_by_user(result_limit => 10000)) "
            "where try_parse_json(query_tag):run_id::varchar = %s",
            [run_id],
        )[0]
        if count or time.monotonic() > deadline:
            return int(count)
        time.sleep(5)


def test_a_wap_cycle_on_snowflake(live: Live) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    config = live.config()
    warehouse = SnowflakeWarehouse(config)
    write, prod = config.write_schema, config.prod_schema

    # Production built straight from the landing data through 2021; then the 2022 load arrives.
    with warehouse.connect() as conn, closing(conn.cursor()) as cursor:
        load_landing(cursor, live.database, generate_rows(FIRST_YEAR, PRODUCTION_THROUGH))
    dbt_build(config, run_id="seed_production", write_schema=prod)
    with warehouse.connect() as conn, closing(conn.cursor()) as cursor:
        load_landing(cursor, live.database, generate_rows(PRODUCTION_THROUGH + 1, LAST_YEAR))

    # Write: the DAG's dbt configuration, every statement tagged with the run.
    assert dbt_build(config, run_id=RUN_A) == {"passed": 30, "failed": 0, "warned": 0}
    assert execute(warehouse, f"select count(*) from {named(warehouse, write, MART)}")[0][0] == YEARS * ROWS_A_YEAR
    assert tagged_queries(warehouse, RUN_A) > 0

    # Audit: the 2022 rows are new; the schemas carry the same grants (both are the role's own).
    report = run_audit(config, run_id=RUN_A)
    rid = report["review_id"]
    mart = next(entry for entry in report["relations"] if entry["name"].lower() == MART)
    assert (mart["status"], mart["rows"]["before"], mart["rows"]["added"]) == ("changed", PRODUCTION_ROWS, ROWS_A_YEAR)
    assert not [f for f in report["swap_safety"] if f["severity"] == "block"], report["swap_safety"]

    # Grants: production gains one the write schema lacks; SHOW GRANTS reads it; "block" refuses the swap.
    execute(warehouse, f"grant usage on schema {named(warehouse, prod)} to role public")
    assert ("USAGE", "ROLE", "PUBLIC") in schema_grants(warehouse, prod)
    assert ("USAGE", "ROLE", "PUBLIC") not in schema_grants(warehouse, write)
    approve = {"decision": "approve", "review_id": rid, "decided_by": "live-suite"}
    with pytest.raises(AirflowFailException, match=r"block the swap: .* grants USAGE to ROLE PUBLIC"):
        publish_task(RUN_A, approve)
    with pytest.raises(AirflowFailException, match=f"audited as review {rid}, but review"):
        publish_task(RUN_A, {**approve, "review_id": other_review_id(rid)})
    assert production_marker(warehouse, prod) is None  # nothing was swapped

    # Publish with WAP_GRANTS_ON_SWAP=copy: the grant is copied, then the real swap.
    config = live.config(WAP_GRANTS_ON_SWAP="copy")
    result = publish_task(RUN_A, approve, report)
    assert (result["outcome"], result["review_id"], result["previous_run_id"]) == ("published", rid, None)
    announced = {item["relation"].upper(): item for item in result["announced"]}  # the catalog's spelling
    assert announced[MART.upper()]["uri"].startswith("snowflake://") and announced[MART.upper()]["review_id"] == rid
    assert execute(warehouse, f"select count(*) from {named(warehouse, prod, MART)}")[0][0] == YEARS * ROWS_A_YEAR
    assert execute(warehouse, f"select count(*) from {named(warehouse, write, MART)}")[0][0] == PRODUCTION_ROWS
    assert production_marker(warehouse, prod).run_id == RUN_A
    assert ("USAGE", "ROLE", "PUBLIC") in schema_grants(warehouse, prod)  # readers kept their access
    assert publish_task(RUN_A, approve)["outcome"] == "already published"  # a retry never swaps back

    # The first publish replaced a production WAP did not build: nothing to roll back to.
    with pytest.raises(PublishRefused, match="was the first"):
        SnowflakePublisher(warehouse).rollback()

    # A second cycle, then the rollback puts run A back.
    assert dbt_build(config, run_id=RUN_B)["failed"] == 0
    report_b = run_audit(config, run_id=RUN_B)
    assert {entry["status"] for entry in report_b["relations"]} == {"unchanged"}
    result = publish_task(RUN_B, {"decision": "approve", "review_id": report_b["review_id"]})
    assert (result["outcome"], result["previous_run_id"]) == ("published", RUN_A)
    result = SnowflakePublisher(warehouse).rollback()
    assert (result.restored_run_id, result.withdrawn_run_id) == (RUN_A, RUN_B)
    assert production_marker(warehouse, prod).run_id == RUN_A
    assert production_marker(warehouse, write).run_id == RUN_B
    assert execute(warehouse, f"select count(*) from {named(warehouse, prod, MART)}")[0][0] == YEARS * ROWS_A_YEAR


def test_the_shop_project_carries_its_state_across_swaps(live: Live, tmp_path: Path) -> None:
    """A project that is not the demo (tests/dbt_projects/shop): two cycles, each published with the real swap.
    The second cycle's ``reset_write`` clones production's incremental model and snapshot (``CLONE ... COPY
    GRANTS``), dbt-snowflake extends the clones, and after the swap production holds both batches, the snapshot's
    history, and views that read production."""
    from tests.shop_support import BATCHES, SHOP, load_batch_sql
    from wap.dbt.prepare import prepare
    from wap.dbt.project import prepared_project
    from wap.write.reset import reset_write_schema
    from wap.write.state import load_stateful_relations

    config = live.config(
        WAP_DBT_PROJECT_DIR=str(SHOP),
        WAP_DUCKDB_PATH=str(tmp_path / "parse.duckdb"),
        WAP_WRITE_SCHEMA=f"{live.write_schema}_SHOP",
        WAP_PROD_SCHEMA=f"{live.prod_schema}_SHOP",
    )
    warehouse = SnowflakeWarehouse(config)
    write, prod = config.write_schema, config.prod_schema
    (landing,) = execute(
        warehouse, "select count(*) from information_schema.schemata where schema_name = 'SHOP_LANDING'"
    )[0]
    if landing:
        pytest.skip(f"{live.database} has a schema SHOP_LANDING already (the shop project's source): not touched")
    swap = f"alter schema {named(warehouse, write)} swap with {named(warehouse, prod)}"
    try:
        prepare(config)
        stateful = load_stateful_relations(prepared_project(config).manifest_path)
        execute(warehouse, f"create schema if not exists {named(warehouse, prod)}")
        for batch, run_id in ((1, "manual__live_shop_1"), (2, "manual__live_shop_2")):
            with warehouse.connect() as conn, closing(conn.cursor()) as cursor:
                load_batch_sql(cursor, live.database, batch)
            reset = reset_write_schema(config, stateful)
            assert reset.carried == (() if batch == 1 else ("CUSTOMER_STATUS_HISTORY", "ORDERS_HISTORY"))
            dbt_build(config, run_id=run_id)
            report = run_audit(config, run_id=run_id)
            assert report["swap_safety"] == [], report["swap_safety"]  # no view names the write schema
            execute(warehouse, swap)

        orders = execute(warehouse, f"select order_id, batch from {named(warehouse, prod)}.orders_history order by 1")
        assert orders == [(order, batch) for batch in (1, 2) for order, _, _ in BATCHES[batch]["orders"]]
        history = execute(
            warehouse,
            f"select customer_id, status, dbt_valid_to is null from {named(warehouse, prod)}.customer_status_history "
            "order by 1, 2",
        )
        assert history == [(1, "gold", True), (1, "new", False), (2, "new", True), (3, "new", True)]
        # The views read production: the write schema (the previous production) emptied, they still answer.
        reset_write_schema(config, [])
        large = execute(warehouse, f"select count(*) from {named(warehouse, prod)}.stg_large_orders")[0][0]
        assert large == 2
    finally:
        for schema in (write, prod, "SHOP_LANDING", f"{write}_DBT_TEST__AUDIT"):
            execute(warehouse, f"drop schema if exists {named(warehouse, schema)} cascade")


def test_the_connection_is_built_from_the_variables() -> None:
    """How the variables become the connection (needs no account: runs in every test run)."""
    env = {name: f"<{name.lower()}>" for name in REQUIRED}
    password = json.loads(snowflake_default({**env, "SNOWFLAKE_PASSWORD": "pw"}))
    assert (password["login"], password["password"], password["extra"]["warehouse"]) == (
        "<snowflake_user>",
        "pw",
        "<snowflake_warehouse>",
    )
    pem = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nabc\n-----END ENCRYPTED PRIVATE KEY-----\n"
    key = json.loads(snowflake_default({**env, "SNOWFLAKE_PRIVATE_KEY": pem, "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": "k"}))
    assert base64.b64decode(key["extra"]["private_key_content"]).decode() == pem and key["password"] == "k"
    assert missing_settings(env) == [" or ".join(CREDENTIALS)]
