"""The review policy under the real components (scheduler, triggerer, dag processor, API server), with the demo
project's `dbt/wap_policy.yml` and its audit history, in the order a team meets them:

a. the first cycle has no published cycle of history: the rows-added rule fails, the review waits, a reviewer
   approves it, the history records it published by that reviewer;
b. a routine cycle (the next year's load, about as many rows added) publishes with nobody acting: the run, the
   review page and Slack say "published by policy" and which rules held; the history says `policy`;
c. a cycle with removed rows (the same year loaded again without a region) opens a review that names the rule that
   failed, with its figures, on Slack and on the page, beside the recent cycles; nothing is published until a
   person decides (here: reject), and the history keeps every cycle's figures outside the swapped schemas.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from .harness import PROJECT_DIR, AirflowCluster, content, duckdb_scalar

pytestmark = pytest.mark.integration

DAG_ID = "wap_dwh"
VARIABLE = "wap_approval__wap_dwh"
BUILD_TIMEOUT = 420
DECISION_TIMEOUT = 120
HISTORY = "wap_history.audit_history"
RANGE_RULE = "rows added in the range of the last 5 published cycles (±10%)"
REMOVED_RULE = "rows_removed <= 0 (*)"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowCluster]:
    env = {"WAP_POLICY_FILE": str(PROJECT_DIR / "dbt" / "wap_policy.yml"), "WAP_REVIEW_TIMEOUT": "15m"}
    with AirflowCluster(home=tmp_path_factory.mktemp("airflow-policy"), env=env) as running:
        yield running


def _load(cluster: AirflowCluster, *extra: str) -> None:
    """A yearly landing load (only while no task runs: DuckDB allows one writing process)."""
    cluster.run("wap", "landing", "load", "--from", "2023", "--through", "2023", *extra, check=True)


def _policy(cluster: AirflowCluster, run_id: str) -> dict[str, Any]:
    return cluster.xcom(DAG_ID, run_id, "audit", key="policy")


def _history(cluster: AirflowCluster, run_id: str) -> set[tuple]:
    return set(
        _rows(
            cluster,
            f"select distinct outcome, decided_by, rules is not null from {HISTORY} where run_id = ?",
            [run_id],
        )
    )


def _rows(cluster: AirflowCluster, sql: str, params: list[Any]) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(cluster.duckdb_path), read_only=True) as conn:
        return conn.execute(sql, params).fetchall()


def _alerts_since(cluster: AirflowCluster, seen: int) -> str:
    return json.dumps(cluster.outbox()[seen:], ensure_ascii=False)


def test_a_first_cycle_without_history_waits_for_a_reviewer(cluster: AirflowCluster) -> None:
    seen = len(cluster.outbox())
    run_id = cluster.trigger(DAG_ID)
    cluster.wait_for_task(DAG_ID, run_id, "await_approval", "deferred", BUILD_TIMEOUT)
    review_id = cluster.xcom(DAG_ID, run_id, "audit")["review_id"]
    assert cluster.variable_get(VARIABLE) == f"pending {review_id}"
    verdict = _policy(cluster, run_id)["verdict"]
    assert verdict["publish"] is False and verdict["failed"] == [RANGE_RULE], verdict
    (detail,) = [rule["detail"] for rule in verdict["rules"] if rule["rule"] == RANGE_RULE]
    assert "sysselsetting_forholdstall" in detail, detail
    alerts = _alerts_since(cluster, seen)
    assert "did not publish it" in alerts and RANGE_RULE in alerts, alerts  # (no character Slack escapes)

    cluster.variable_set(VARIABLE, f"approve {review_id}")
    assert cluster.wait_for_run(DAG_ID, run_id, DECISION_TIMEOUT) == "success"
    assert _history(cluster, run_id) == {("published", None, False)}


def test_b_a_routine_cycle_publishes_by_policy_with_nobody_acting(cluster: AirflowCluster) -> None:
    _load(cluster)
    seen = len(cluster.outbox())
    run_id = cluster.trigger(DAG_ID)
    assert cluster.wait_for_run(DAG_ID, run_id, BUILD_TIMEOUT + DECISION_TIMEOUT) == "success"
    review_id = cluster.xcom(DAG_ID, run_id, "audit")["review_id"]
    verdict = _policy(cluster, run_id)["verdict"]
    assert verdict["publish"] is True and verdict["failed"] == [] and RANGE_RULE in verdict["held"], verdict
    decision = cluster.xcom(DAG_ID, run_id, "await_approval", key="decision")
    assert decision["decision"] == "approve" and decision["decided_by"] == "policy", decision
    assert cluster.variable_get(VARIABLE) == f"approve {review_id}"
    assert duckdb_scalar(cluster.duckdb_path, "select max(tid) from dwh.sysselsetting_forholdstall") == 2023

    alerts = cluster.outbox()[seen:]
    texts = [message.get("text", "") for message in alerts]
    opened = f"WAP review {review_id} of {DAG_ID}"
    assert any(text.startswith(opened) and "approved by policy" in text for text in texts), texts
    (published,) = [text for text in texts if text.startswith("WAP published")]
    assert "(by policy)" in published and "Rules that held: " in published and RANGE_RULE in published, published

    page = cluster.page(f"/wap/reviews/{DAG_ID}/{run_id}")
    assert "Published by policy" in page and RANGE_RULE in page, page[-3000:]
    assert _history(cluster, run_id) == {("published", "policy", True)}
    log = cluster.task_log(DAG_ID, run_id, "audit")
    assert f"Review {review_id} approved by policy" in log


def test_c_a_cycle_with_removed_rows_waits_and_names_the_rule(cluster: AirflowCluster) -> None:
    production = content(cluster, "dwh")
    _load(cluster, "--without-region", "1804 Bodø")
    seen = len(cluster.outbox())
    run_id = cluster.trigger(DAG_ID)
    cluster.wait_for_task(DAG_ID, run_id, "await_approval", "deferred", BUILD_TIMEOUT)
    review_id = cluster.xcom(DAG_ID, run_id, "audit")["review_id"]
    assert cluster.variable_get(VARIABLE) == f"pending {review_id}"
    review = _policy(cluster, run_id)
    verdict = review["verdict"]
    assert verdict["publish"] is False and REMOVED_RULE in verdict["failed"], verdict
    (detail,) = [rule["detail"] for rule in verdict["rules"] if rule["rule"] == REMOVED_RULE]
    assert "sysselsetting_forholdstall: 12 rows removed (limit 0)" in detail, detail
    assert "rows removed" in " ".join(review["unusual"]["sysselsetting_forholdstall"]), review["unusual"]
    assert len(review["history"]["cycles"]) == 3  # the two earlier cycles and this one

    alerts = _alerts_since(cluster, seen)
    slack_rule = REMOVED_RULE.replace("<", "&lt;")  # Slack's mrkdwn escapes it
    assert "did not publish it" in alerts and slack_rule in alerts and "12 rows removed (limit 0)" in alerts, alerts
    page = cluster.page(f"/wap/reviews/{DAG_ID}/{run_id}")
    assert 'id="policy-rules"' in page and "failed" in page and "12 rows removed (limit 0)" in page
    assert page.count('<svg class="series"') >= 3, "the recent cycles beside this one, per relation"
    status = cluster.run("wap", "status", check=True).stdout
    assert f"FAILED: {REMOVED_RULE}" in status and "the last 2 cycles and this one" in status, status

    cluster.assert_stays(lambda: cluster.variable_get(VARIABLE) == f"pending {review_id}", 5, "the review to wait")
    cluster.variable_set(VARIABLE, f"reject {review_id}")
    assert cluster.wait_for_run(DAG_ID, run_id, DECISION_TIMEOUT) == "success"
    assert cluster.task_state(DAG_ID, run_id, "publish") == "skipped"
    assert content(cluster, "dwh") == production
    # Every cycle's figures outlive the swaps: the first two published, this one not (recorded by the reject).
    assert _history(cluster, run_id) == {("not published", None, False)}
    outcomes = _rows(cluster, f"select outcome, count(distinct run_id) from {HISTORY} group by 1 order by 1", [])
    assert outcomes == [("not published", 1), ("published", 2)]
