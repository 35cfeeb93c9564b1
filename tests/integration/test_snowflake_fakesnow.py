"""The Snowflake path on fakesnow: dbt-snowflake builds the dbt project with the profile Cosmos maps from
``snowflake_default`` (user and password, then an encrypted key pair); the audit and the publish guards then run
on what it built, through ``SnowflakeHook`` and the real Snowflake connector (``tests/fakesnow_support.py``).

The build runs through Cosmos' local operator, configured by ``wap.dbt.cosmos`` as the DAG's write tasks are
(``tests/snowflake_support.py``). No dbt macro is shimmed: fakesnow 0.12.1 runs every statement dbt-snowflake
1.11.6 sends for this project (it drops ``transient`` from ``create or replace transient table``, with a warning).
What fakesnow cannot run, the schema swap and ``SHOW GRANTS``, is pinned as text in
``tests/include/wap/warehouse/test_snowflake_publish.py`` and run for real by ``tests/live/test_snowflake_live.py``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fakesnow_support import (
    FakesnowServer,
    bulk_load_landing,
    drop_database,
    new_database_name,
    point_snowflake_default,
    record_logins,
)
from tests.snowflake_support import (
    BUILD_TASK,
    MART,
    PIVOT,
    ROWS_A_YEAR,
    STAGING,
    dbt_build,
    load_landing,
    other_review_id,
    publish_task,
)
from wap.audit.dialect import DIALECTS
from wap.audit.report import review_id
from wap.audit.stage import run_audit
from wap.config import WapConfig, load_config
from wap.dbt.cosmos import SnowflakeConnectionProfileMapping, profile_config
from wap.local.landing import FIRST_YEAR, LAST_YEAR, PRODUCTION_THROUGH, generate_rows
from wap.publish.guards import PublishRefused, read_marker
from wap.publish.snowflake import SnowflakePublisher
from wap.warehouse.snowflake import SnowflakeWarehouse

pytestmark = pytest.mark.integration

RUN_ID = "manual__2026-03-01T06:00:00+00:00"
PASSPHRASE = "correct horse battery staple"
PRODUCTION_ROWS = (PRODUCTION_THROUGH - FIRST_YEAR + 1) * ROWS_A_YEAR


@dataclass(frozen=True)
class Built:
    config: WapConfig
    warehouse: SnowflakeWarehouse
    database: str
    tests: dict[str, int]
    seed_logins: list[dict[str, Any]]
    logins: list[dict[str, Any]]
    report: dict[str, Any]


def guards_of(built: Built) -> SnowflakePublisher:
    return SnowflakePublisher(built.warehouse)


def encrypted_key(passphrase: str) -> str:
    """A new RSA key as Snowflake's key-pair guide makes it (PKCS#8, encrypted), base64 as the provider wants."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    return base64.b64encode(pem).decode()


@pytest.fixture(scope="module")
def built(fakesnow_server: FakesnowServer) -> Iterator[Built]:
    """Production ``dwh`` built through 2021; the 2022 landing load; wap_dwh's write stage built ``develop_dwh``
    and its audit ran: the state in which a reviewer is asked.

    ``snowflake_default`` has user and password for the production build, then an encrypted key pair (the
    README's set-up) for the write stage, the audit and publish: both Cosmos mappings reach dbt-snowflake.
    """
    database = new_database_name()
    # warehouse and role: Cosmos maps them from the extras (fakesnow ignores them); protocol: the server's HTTP.
    extras = {"warehouse": "WAP_WH", "role": "WAP_ROLE", "protocol": "http"}
    with pytest.MonkeyPatch.context() as monkeypatch:
        point_snowflake_default(monkeypatch, fakesnow_server, database, **extras)
        monkeypatch.setenv("WAP_WAREHOUSE", "snowflake")
        monkeypatch.setenv("WAP_DATABASE", database.lower())
        config = load_config()
        warehouse = SnowflakeWarehouse(config)
        bulk_load_landing(fakesnow_server, database, generate_rows(FIRST_YEAR, PRODUCTION_THROUGH))
        with record_logins(monkeypatch) as seed_logins:
            dbt_build(config, run_id="seed_production", write_schema=config.prod_schema)

        point_snowflake_default(
            monkeypatch,
            fakesnow_server,
            database,
            password=PASSPHRASE,
            private_key_content=encrypted_key(PASSPHRASE),
            **extras,
        )
        with warehouse.connect() as conn, closing(conn.cursor()) as cursor:  # the new load, through the hook
            load_landing(cursor, database, generate_rows(PRODUCTION_THROUGH + 1, LAST_YEAR))
        with record_logins(monkeypatch) as logins:
            tests = dbt_build(config, run_id=RUN_ID)
        report = run_audit(config, run_id=RUN_ID, dbt_tests=[{"model": "(build)", **tests}])
        yield Built(config, warehouse, database, tests, seed_logins, logins, report)
    drop_database(database)


def count(built: Built, relation: str) -> int:
    with built.warehouse.session(read_only=True) as query:
        return query(f"select count(*) from {relation}", [])[0][0]


# -- write: dbt-snowflake through the Cosmos profile -------------------------------------------------------------


def test_dbt_builds_the_write_schema_with_the_mapped_profile(built: Built) -> None:
    mapping = profile_config(built.config).profile_mapping
    assert isinstance(mapping, SnowflakeConnectionProfileMapping)
    profile = mapping.profile
    assert type(mapping.mapping).__name__ == "SnowflakeEncryptedPrivateKeyPemProfileMapping"
    assert {key: profile[key] for key in ("database", "schema", "warehouse", "role", "protocol")} == {
        "database": built.database.lower(),
        "schema": "develop_dwh",
        "warehouse": "WAP_WH",
        "role": "WAP_ROLE",
        "protocol": "http",
    }
    # secrets reach dbt as environment variables, never in the profile file
    assert profile["private_key"] == "{{ env_var('COSMOS_CONN_SNOWFLAKE_PRIVATE_KEY') }}"
    assert profile["private_key_passphrase"] == "{{ env_var('COSMOS_CONN_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE') }}"
    assert "password" not in profile
    # dbt-snowflake decrypted the key and signed in with it (a JWT); production was built with the password
    assert {login["authenticator"] for login in built.logins} == {"SNOWFLAKE_JWT"}
    assert {login["authenticator"] for login in built.seed_logins} == {None}

    assert built.tests == {"passed": 30, "failed": 0, "warned": 0}
    years = LAST_YEAR - FIRST_YEAR + 1
    assert count(built, f"develop_dwh.{MART}") == years * ROWS_A_YEAR
    assert count(built, f"develop_dwh.{PIVOT}") == years * ROWS_A_YEAR
    assert count(built, f"develop_dwh.{STAGING}") == years * ROWS_A_YEAR * 3
    assert count(built, f"dwh.{MART}") == (years - 1) * ROWS_A_YEAR
    with built.warehouse.session(read_only=True) as query:
        tables = query(
            "select table_name from information_schema.tables where table_schema = 'DEVELOP_DWH' "
            "and table_type = 'BASE TABLE' order by table_name",
            [],
        )
        views = query("select table_name from information_schema.views where table_schema = 'DEVELOP_DWH'", [])
        ((rate, change),) = query(
            f"select sysselsettingsandel, endring_sysselsettingsandel from develop_dwh.{MART} "
            "where region = '0301 Oslo' and kjonn = 'Kvinner' and alder = '25-39 år' and tid = 2022",
            [],
        )
    assert tables == [(PIVOT.upper(),), (MART.upper(),), ("_WAP_MARKER",)]  # and the audit's marker
    assert views == [(STAGING.upper(),)]
    assert 0.5 < float(rate) < 1 and change is not None  # LAG over tid reached 2021


def test_every_dbt_session_is_tagged_with_the_run(built: Built) -> None:
    """dbt-snowflake sends the profile's query_tag as the session's QUERY_TAG when it logs in."""
    assert built.logins, "dbt never logged in to the server"
    tags = {login["session_parameters"].get("QUERY_TAG") for login in built.logins}
    assert len(tags) == 1
    assert json.loads(tags.pop()) == {"app": "wap", "dag_id": "wap_dwh", "run_id": RUN_ID, "task_id": BUILD_TASK}


# -- audit: the diff inside the warehouse ------------------------------------------------------------------------


def test_the_audit_reports_the_2022_rows_as_added(built: Built) -> None:
    report = built.report
    assert report["warehouse"] == "snowflake" and report["run_id"] == RUN_ID
    assert report["review_id"] == review_id(RUN_ID, {k: v for k, v in report.items() if k != "review_id"})
    relations = {entry["name"].lower(): entry for entry in report["relations"]}
    assert set(relations) == {MART, PIVOT, STAGING}
    for name in (MART, PIVOT):
        entry = relations[name]
        assert entry["status"] == "changed"
        assert [column.lower() for column in entry["key"]] == ["region", "kjonn", "alder", "tid"]  # the dbt test
        assert entry["rows"] == {"before": PRODUCTION_ROWS, "after": PRODUCTION_ROWS + ROWS_A_YEAR,
                                 "added": ROWS_A_YEAR, "removed": 0, "changed": 0}  # fmt: skip
        samples = entry["samples"]["added"]  # rows as Snowflake names their columns: upper case
        assert samples and {sample["TID"] for sample in samples} == {LAST_YEAR}
    (periods,) = relations[MART]["periods"]  # periode_start, the mart's one date column: rows per year
    assert periods["column"].lower() == "periode_start" and periods["grain"] == "year"
    assert periods["counts"][-2:] == [
        {"period": str(LAST_YEAR - 1), "before": ROWS_A_YEAR, "after": ROWS_A_YEAR},
        {"period": str(LAST_YEAR), "before": 0, "after": ROWS_A_YEAR},
    ]
    assert report["dbt_tests"] == [{"model": "(build)", "passed": 30, "failed": 0, "warned": 0}]
    # The staging view names the landing source, never the write schema; fakesnow cannot SHOW GRANTS, which is
    # exactly the case of a role that may not read them: unknown grants block the swap.
    assert [(f["check"], f["severity"]) for f in report["swap_safety"]] == [("grants_unreadable", "block")]


def test_the_audit_marked_the_build(built: Built) -> None:
    with built.warehouse.session(read_only=True) as query:
        marker = read_marker(query, DIALECTS["snowflake"], "develop_dwh")
    assert marker is not None
    assert (marker.run_id, marker.review_id) == (RUN_ID, built.report["review_id"])
    assert set(marker.fingerprints) == {MART, PIVOT, STAGING}
    assert marker.fingerprints[MART][0] == PRODUCTION_ROWS + ROWS_A_YEAR


# -- publish: the guards before the swap ----------------------------------------------------------------------


def test_the_guards_pass_for_the_audited_build_and_refuse_another_review(built: Built) -> None:
    rid = built.report["review_id"]
    assert guards_of(built).check_publish(run_id=RUN_ID, review_id=rid) == (
        False,
        None,
    )  # dwh has no WAP marker yet
    other = other_review_id(rid)
    with pytest.raises(PublishRefused, match=f"audited as review {rid}, but review {other} was approved"):
        guards_of(built).check_publish(run_id=RUN_ID, review_id=other)
    with pytest.raises(PublishRefused, match="not of this run"):
        guards_of(built).check_publish(run_id="manual__another_run", review_id=rid)


def test_the_guards_refuse_a_build_changed_after_the_review(built: Built) -> None:
    edit = f"update develop_dwh.{MART} set befolkning = befolkning + %s where tid = 2022 and region = '3403 Hamar'"
    with built.warehouse.session() as query:
        query(edit, [1])
    try:
        with pytest.raises(PublishRefused, match=f"{MART}'s content differs from the audited content"):
            guards_of(built).check_publish(run_id=RUN_ID, review_id=built.report["review_id"])
    finally:
        with built.warehouse.session() as query:
            query(edit, [-1])
    assert guards_of(built).check_publish(run_id=RUN_ID, review_id=built.report["review_id"]) == (
        False,
        None,
    )


def test_the_publish_operator_refuses_a_review_other_than_the_audited_one(built: Built) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    rid = built.report["review_id"]
    other = other_review_id(rid)
    with pytest.raises(AirflowFailException, match=f"audited as review {rid}, but review {other} was approved"):
        publish_task(RUN_ID, {"decision": "approve", "review_id": other})
    with pytest.raises(AirflowFailException, match="no approval to publish"):
        publish_task(RUN_ID, {"decision": "reject", "review_id": rid})
    assert count(built, f"dwh.{MART}") == PRODUCTION_ROWS


def test_the_publish_operator_blocks_the_swap_while_grants_are_unknown(built: Built) -> None:
    """The approved review passes the guards; the swap-safety check then refuses (fakesnow has no SHOW GRANTS),
    so no swap statement is sent and production is untouched."""
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="swap-safety checks block the swap: cannot read the grants"):
        publish_task(RUN_ID, {"decision": "approve", "review_id": built.report["review_id"]})
    assert count(built, f"dwh.{MART}") == PRODUCTION_ROWS
    with built.warehouse.session(read_only=True) as query:
        assert read_marker(query, DIALECTS["snowflake"], "dwh") is None
