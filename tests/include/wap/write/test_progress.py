"""The one build's progress from dbt's JSON log, each unit's verdict from it, and the report's test counts."""

from __future__ import annotations

import json

import pytest

from wap.write.progress import BuildProgress, dbt_test_rows, describe_failures, parse_line, unit_verdict

MODEL, TEST_A, TEST_B = "model.p.orders", "test.p.unique_orders_id.1", "test.p.not_null_orders_id.2"


def record(name: str, msg: str, uid: str | None = None, status: str | None = None, level: str = "info") -> str:
    """One line of `dbt build --log-format json`, as dbt 1.11 writes it (only the fields the bundle reads)."""
    data: dict = {}
    if uid is not None:
        data["node_info"] = {"unique_id": uid, "node_status": status, "resource_type": uid.split(".")[0]}
    return json.dumps({"data": data, "info": {"name": name, "msg": msg, "level": level, "ts": "2026-12-02T03:00:00Z"}})


def build(*lines: str) -> BuildProgress:
    progress = BuildProgress(try_number=1)
    for line in lines:
        progress.feed(line)
    return progress


GOOD = [
    record("MainReportVersion", "Running with dbt=1.11.16"),
    record("LogStartLine", "1 of 3 START sql table model develop_dwh.orders", MODEL, "started"),
    record("LogModelResult", "1 of 3 OK created sql table model develop_dwh.orders", MODEL, "success"),
    record("LogStartLine", "2 of 3 START test unique_orders_id", TEST_A, "started"),
    record("LogTestResult", "2 of 3 PASS unique_orders_id", TEST_A, "pass"),
    record("LogStartLine", "3 of 3 START test not_null_orders_id", TEST_B, "started"),
    record("LogTestResult", "3 of 3 WARN 1 not_null_orders_id", TEST_B, "warn"),
]


def test_each_node_gets_dbts_status_and_its_own_lines() -> None:
    progress = build(*GOOD)
    nodes = progress.snapshot()["nodes"]
    assert {uid: node["status"] for uid, node in nodes.items()} == {MODEL: "success", TEST_A: "pass", TEST_B: "warn"}
    assert nodes[MODEL]["lines"] == [
        "1 of 3 START sql table model develop_dwh.orders",
        "1 of 3 OK created sql table model develop_dwh.orders",
    ]
    assert progress.failures() == []


def test_a_started_node_is_running_until_its_result() -> None:
    progress = build(GOOD[1])
    assert progress.nodes[MODEL]["status"] == "running" and progress.changed


def test_a_failure_keeps_dbts_error_message_from_the_summary() -> None:
    progress = build(
        GOOD[1],
        record("LogModelResult", "1 of 3 ERROR creating sql table model develop_dwh.orders", MODEL, "error", "error"),
        record("LogStartLine", "2 of 3 SKIP test unique_orders_id", TEST_A, "skipped"),
        record("RunResultFailure", "Failure in model orders (models/orders.sql)", MODEL, None, "error"),
        record("RunResultError", "  Runtime Error in model orders\n  Binder Error: column nope", MODEL, None, "error"),
    )
    assert progress.failures() == [(MODEL, "error", "Runtime Error in model orders Binder Error: column nope")]
    assert progress.nodes[TEST_A]["status"] == "skipped"
    assert describe_failures(progress.failures()) == (
        "model orders (error: Runtime Error in model orders Binder Error: column nope)"
    )


def test_lines_that_are_not_json_and_events_of_no_node_change_nothing() -> None:
    progress = build("Some plain text a library printed", record("FoundStats", "Found 1 model"), GOOD[0])
    assert progress.nodes == {} and not progress.changed
    assert parse_line("plain text").message == "plain text"


def test_debug_lines_are_not_kept_and_lines_are_bounded() -> None:
    lines = [record("SQLQuery", "select 1", MODEL, "started", level="debug")]
    lines += [record("LogStartLine", f"line {i}", MODEL, "started") for i in range(50)]
    progress = build(*lines)
    assert progress.nodes[MODEL]["lines"][0] == "line 0" and len(progress.nodes[MODEL]["lines"]) == 12


UNIT = [MODEL, TEST_A, TEST_B]


def snapshot(*lines: str, try_number: int = 1, done: bool = False) -> dict:
    progress = BuildProgress(try_number=try_number)
    for line in lines:
        progress.feed(line)
    if done:
        progress.finish()
    return progress.snapshot()


def test_a_unit_succeeds_once_its_node_and_all_its_tests_passed_or_warned() -> None:
    assert unit_verdict(snapshot(*GOOD[:5]), UNIT, producer_state="running", producer_retries=1).state == "waiting"
    verdict = unit_verdict(snapshot(*GOOD), UNIT, producer_state="running", producer_retries=1)
    assert verdict.state == "success" and verdict.reason == "1 test(s) warned"


FAILED = [*GOOD[:3], GOOD[3], record("LogTestResult", "2 of 3 FAIL 2 unique_orders_id", TEST_A, "fail")]


@pytest.mark.parametrize(
    ("producer_state", "try_number", "expected"),
    [
        ("running", 1, "waiting"),  # this try will be retried from the reset: wait for the retry
        ("running", 2, "failed"),  # the last try (retries 1): fail now, while dbt goes on with the rest
        ("failed", 1, "failed"),  # the build task has failed for good
        ("up_for_retry", 2, "waiting"),  # the snapshot is the last try's: the next one clears it
        ("queued", 2, "waiting"),
        ("scheduled", 2, "waiting"),
    ],
)
def test_a_failed_test_fails_the_unit_only_when_the_build_will_not_be_retried(
    producer_state: str, try_number: int, expected: str
) -> None:
    verdict = unit_verdict(
        snapshot(*FAILED, try_number=try_number), UNIT, producer_state=producer_state, producer_retries=1
    )
    assert verdict.state == expected
    if expected == "failed":
        assert verdict.reason == "test unique_orders_id: fail"


def test_a_skipped_node_fails_its_unit_and_says_why() -> None:
    lines = [record("LogStartLine", "1 of 3 SKIP relation develop_dwh.orders", MODEL, "skipped")]
    verdict = unit_verdict(snapshot(*lines), UNIT, producer_state="failed", producer_retries=1)
    assert verdict.state == "failed" and "skipped by dbt, as something it depends on failed" in verdict.reason


def test_a_build_that_never_ran_fails_the_unit() -> None:
    verdict = unit_verdict(None, UNIT, producer_state="upstream_failed", producer_retries=1)
    assert verdict.state == "failed" and "upstream_failed" in verdict.reason


def test_a_unit_waits_while_the_build_has_not_started() -> None:
    for state in (None, "scheduled", "queued"):
        assert unit_verdict(None, UNIT, producer_state=state, producer_retries=1).state == "waiting"
    assert unit_verdict(snapshot(), UNIT, producer_state="running", producer_retries=1).state == "waiting"


def test_nodes_dbt_never_reported_follow_how_the_build_ended() -> None:
    partial = snapshot(*GOOD[:3], done=True)  # the model built; its tests never ran
    assert unit_verdict(partial, UNIT, producer_state="success", producer_retries=1).state == "success"
    failed = unit_verdict(partial, UNIT, producer_state="failed", producer_retries=1)
    assert failed.state == "failed" and "before dbt finished this node" in failed.reason


def test_the_test_rows_count_each_units_tests_like_per_model_mode() -> None:
    rows = dbt_test_rows(snapshot(*GOOD), [("orders", UNIT), ("customers", ["model.p.customers"])])
    assert rows == [{"model": "orders", "passed": 1, "failed": 0, "warned": 1}]
    failing = dbt_test_rows(snapshot(*FAILED), [("orders", UNIT)])
    assert failing == [{"model": "orders", "passed": 0, "failed": 1, "warned": 0}]
