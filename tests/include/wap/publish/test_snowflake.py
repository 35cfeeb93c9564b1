"""Publish on Snowflake: the guards' queries run against fakesnow through the real connector; the swap, which
fakesnow cannot run, is asserted as the exact statement the operator sends."""

from __future__ import annotations

import pytest

from tests.include.wap.warehouse.test_snowflake import snowflake_config
from wap.audit.dialect import DIALECTS
from wap.audit.marker import current_fingerprints, write_marker
from wap.audit.swap_safety import schema_findings, schema_properties
from wap.publish.guards import PublishRefused
from wap.publish.operator import SnowflakePublishOperator
from wap.publish.snowflake import SnowflakePublisher
from wap.warehouse.snowflake import SnowflakeWarehouse

RUN, REVIEW = "manual__2026-01-02", "0123456789ab"


@pytest.fixture
def warehouse(snowflake_default: str) -> SnowflakePublisher:
    """develop_dwh holds the audited build of RUN; dwh holds a production published by an earlier run."""
    wh = SnowflakeWarehouse(snowflake_config(snowflake_default))
    with wh.session() as query:
        for sql in (
            "create schema develop_dwh",
            "create schema dwh",
            "create table develop_dwh.t (id int, v varchar)",
            "insert into develop_dwh.t values (1, 'a'), (2, 'b'), (3, 'c')",
            "create table dwh.t (id int, v varchar)",
            "insert into dwh.t values (1, 'a')",
        ):
            query(sql, [])
        fingerprints = current_fingerprints(query, DIALECTS["snowflake"], "develop_dwh")
    write_marker(
        wh,
        run_id=RUN,
        review_id=REVIEW,
        fingerprints=[("*", None, None)] + [(k, c, h) for k, (c, h) in fingerprints.items()],
    )
    return SnowflakePublisher(wh)


def test_the_swap_statement_is_exactly_snowflakes(warehouse: SnowflakePublisher, monkeypatch) -> None:
    monkeypatch.setenv("WAP_WAREHOUSE", "snowflake")
    monkeypatch.setenv("WAP_DATABASE", warehouse.config.snowflake_database)
    database = warehouse.config.snowflake_database.upper()
    expected = f'ALTER SCHEMA "{database}"."DEVELOP_DWH" SWAP WITH "{database}"."DWH"'
    assert warehouse.swap_sql() == expected
    operator = SnowflakePublishOperator(task_id="publish")
    assert operator.sql == expected
    assert operator.conn_id == "snowflake_default"


def test_the_guards_pass_for_the_audited_build(warehouse: SnowflakePublisher) -> None:
    assert warehouse.check_publish(run_id=RUN, review_id=REVIEW) == (False, None)


@pytest.mark.parametrize(
    ("edit", "run_id", "review_id", "message"),
    [
        ("", RUN, "ba9876543210", "was audited as review 0123456789ab, but review ba9876543210 was approved"),
        ("", "manual__other", REVIEW, "not of this run manual__other"),
        ("insert into develop_dwh.t values (4, 'late')", RUN, REVIEW, "t has 4 rows, audited 3"),
        ("update develop_dwh.t set v = 'edited' where id = 1", RUN, REVIEW, "t's content differs"),
        ("drop table develop_dwh._wap_marker", RUN, REVIEW, "has no audit marker"),
    ],
)
def test_the_guards_fail_closed(warehouse: SnowflakePublisher, edit, run_id, review_id, message) -> None:
    if edit:
        with warehouse.warehouse.session() as query:
            query(edit, [])
    with pytest.raises(PublishRefused, match=message):
        warehouse.check_publish(run_id=run_id, review_id=review_id)


def test_after_a_swap_a_retry_is_a_no_op(warehouse: SnowflakePublisher) -> None:
    """fakesnow cannot swap schemas: move the marker as the swap would, then check and record as publish does."""
    with warehouse.warehouse.session() as query:
        query("create table dwh._wap_marker as select * from develop_dwh._wap_marker", [])
        query("drop table develop_dwh._wap_marker", [])
    warehouse.finish_publish(run_id=RUN, review_id=REVIEW, previous=None)
    already, production = warehouse.check_publish(run_id=RUN, review_id=REVIEW)
    assert already and production.run_id == RUN
    with warehouse.warehouse.session() as query:
        assert query("select run_id, review_id, replaced_run_id from dwh._wap_published", []) == [(RUN, REVIEW, None)]


def test_a_retry_after_a_crash_between_swap_and_record_records_once(warehouse: SnowflakePublisher) -> None:
    """The swap committed, then the worker died before recording it: the retry swaps nothing and records it,
    naming the production the swap replaced (whose marker is now in the write schema); a second retry is silent."""
    previous = [("*", None, None), ("t", 1, "123")]
    with warehouse.warehouse.session() as query:
        query("create table dwh._wap_marker as select * from develop_dwh._wap_marker", [])
        query("drop table develop_dwh._wap_marker", [])
    write_marker(warehouse.warehouse, run_id="manual__before", review_id="aaaaaaaaaaaa", fingerprints=previous)
    already, _ = warehouse.check_publish(run_id=RUN, review_id=REVIEW)
    assert already
    assert warehouse.complete_publish(run_id=RUN, review_id=REVIEW) is True
    with warehouse.warehouse.session() as query:
        recorded = query("select run_id, review_id, replaced_run_id from dwh._wap_published", [])
    assert recorded == [(RUN, REVIEW, "manual__before")]
    assert warehouse.complete_publish(run_id=RUN, review_id=REVIEW) is False


def test_schema_properties_are_read_and_compared(warehouse: SnowflakePublisher) -> None:
    properties = schema_properties(warehouse.warehouse, "develop_dwh")
    assert set(properties) == {"is_transient", "is_managed_access", "retention_time"}
    assert properties == schema_properties(warehouse.warehouse, "dwh")


def test_unreadable_grants_block_the_swap_under_the_default_policy(warehouse: SnowflakePublisher) -> None:
    """fakesnow has no SHOW GRANTS: exactly the case of a role that may not read grants. Unknown fails closed."""
    findings = schema_findings(warehouse.warehouse)
    assert [(f["check"], f["severity"]) for f in findings] == [("grants_unreadable", "block")]


def test_rollback_refusals_on_snowflake(warehouse: SnowflakePublisher) -> None:
    with pytest.raises(PublishRefused, match="not put in place by a WAP publish"):
        warehouse.rollback()
    with warehouse.warehouse.session() as query:  # a first publish: nothing earlier to restore
        query("create table dwh._wap_marker as select * from develop_dwh._wap_marker", [])
        query("drop table develop_dwh._wap_marker", [])
    warehouse.finish_publish(run_id=RUN, review_id=REVIEW, previous=None)
    with pytest.raises(PublishRefused, match="was the first"):
        warehouse.rollback()
