"""The faults a WAP pipeline must survive, under the real scheduler, dag processor, triggerer and API server.

One cluster for the module, with Slack pointed at the fake Slack server (``slack_default``, a webhook), a review
timeout of ``TIMEOUT`` and a failpoints file. The tests run in order and hand production's expected content on;
after each, production (``dwh``, every table's rows and content hash, every view's body) is compared with what
it must be, not just counted. Between cycles the 2022 landing data is revised, so every build differs from
production and a publish that should not happen would show.

a. Slack answers 500 to everything: the review opens anyway (the alert fails, logged), the approval publishes.
b. Slack drops every connection; while a review is open a second run is triggered: it waits (queued) and the
   write schema under the open review stays byte-for-byte the same; the triggerer is killed (SIGKILL) and
   restarted while the sensor is deferred: the review survives and the approval completes it.
c. The second run then builds and opens its review; the Variable still says ``approve <the previous review>``
   (stale), then names another run's review: both are waited out; nobody decides: after ``TIMEOUT`` the sensor
   is skipped, nothing is published, and Slack (back up) gets the timeout notice.
d. A failing dbt test (negative populations in the landing data): the one build fails, and so does the task of the
   model the test belongs to; no review opens, nothing is published, the failure alert names the test and its
   model; the build is not retried (a failed test would fail again). Then, on that failed run (the landing data
   repaired): clearing the model's task judges the same failed build again and builds nothing (nothing audited);
   clearing ``write.build`` with its downstream (the units, the audit...) rebuilds the write schema from
   production's state (its reset drops the failed try's relations) and opens a review of the fixed build, which is
   then rejected.
d2. The build task is killed (SIGKILL, failpoint ``build.after_dbt``) after its dbt built everything: Airflow
   retries it, the retry resets the write schema again and builds it again, and only then is it audited.
e. ``publish`` is killed (SIGKILL, failpoint ``publish.after_swap``) right after the swap committed; Airflow
   retries it; the retry sees production already holds this run and swaps nothing: production is this build,
   and the write schema still holds the previous production. The killed try announced nothing, so the retry
   announces the publish: the example consumer runs once. Clearing the succeeded publish runs it again as a
   no-op that announces nothing. Then ``wap_dwh_rollback`` puts the previous production back and announces it:
   the consumer runs again.

Downstream, throughout: every publish announces its changed relations as Assets (with its run and review id) and
``example_wap_consumer`` (scheduled on one of them) runs once after it and reads the published table; a timeout,
a failed build and a reject announce nothing and trigger nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.slack_server import FakeSlackServer

from .harness import (
    AirflowCluster,
    content,
    default_dag_files,
    duckdb_execute,
    duckdb_scalar,
    example_dag_files,
    leftovers,
    revise_landing,
)

pytestmark = pytest.mark.integration

DAG_ID = "wap_dwh"
VARIABLE = "wap_approval__wap_dwh"
TIMEOUT = 90  # seconds: WAP_REVIEW_TIMEOUT of this cluster
POKE_SECONDS = 2.0
THREE_POKES = 3 * POKE_SECONDS + 2
BUILD_TIMEOUT = 420
DECISION_TIMEOUT = 120
RETRY_TIMEOUT = 240  # the publish retry waits for default_args' retry_delay (1 minute)
CONSUMER = "example_wap_consumer"
CHANGED = ["int_sysselsetting_pivoted", "sysselsetting_forholdstall"]  # what a revised 2022 load changes


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as server:
        yield server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, slack: FakeSlackServer) -> Iterator[AirflowCluster]:
    home = tmp_path_factory.mktemp("airflow-faults")
    env = {
        "AIRFLOW_CONN_SLACK_DEFAULT": slack.webhook_connection(),
        "WAP_REVIEW_TIMEOUT": f"{TIMEOUT}s",
        "WAP_FAILPOINTS_FILE": str(home / "failpoints"),
    }
    with AirflowCluster(home=home, env=env, dag_files=default_dag_files() + example_dag_files()) as running:
        yield running


@pytest.fixture(scope="module")
def journey(cluster: AirflowCluster) -> dict[str, Any]:
    return {"dwh": content(cluster, "dwh")}


def _open_review(cluster: AirflowCluster, run_id: str) -> str:
    cluster.wait_for_task(DAG_ID, run_id, "await_approval", "deferred", BUILD_TIMEOUT)
    review_id = cluster.xcom(DAG_ID, run_id, "audit")["review_id"]
    assert cluster.variable_get(VARIABLE) == f"pending {review_id}"
    return review_id


def _consumer_runs(cluster: AirflowCluster) -> list[tuple[str, str]]:
    return cluster._query("select run_id, state from dag_run where dag_id = ? order by id", (CONSUMER,))


def _consumed_once(cluster: AirflowCluster, source_dag_id: str, run_id: str, *, runs_before: int) -> dict[str, Any]:
    """The run's task announced the changed relations, with its run and review id, and the example consumer ran
    once after it and read the published table. Returns the announced events' extra (all alike but the relation)."""
    events = cluster.asset_events(source_dag_id, run_id)
    assert sorted(event["extra"]["relation"] for event in events) == CHANGED, events
    assert all(event["extra"]["status"] == "changed" for event in events), events
    (extra,) = {json.dumps({k: v for k, v in e["extra"].items() if k != "relation"}, sort_keys=True) for e in events}
    ids = [event["id"] for event in events]
    (consumer_run, state) = cluster.wait_for(
        lambda: next((tuple(r[1:]) for r in cluster.runs_triggered_by(ids) if r[2] in ("success", "failed")), None),
        120,
        f"{CONSUMER}'s run triggered by the events of {run_id}",
    )
    assert state == "success", cluster.task_log(CONSUMER, consumer_run, "count_rows")[-3000:]
    assert len(_consumer_runs(cluster)) == runs_before + 1, _consumer_runs(cluster)
    read = cluster.xcom(CONSUMER, consumer_run, "count_rows")
    rows = duckdb_scalar(cluster.duckdb_path, "select count(*) from dwh.sysselsetting_forholdstall")
    assert read["rows"] == rows and read["run_id"] == json.loads(extra)["run_id"], read
    return json.loads(extra)


def _nothing_announced(cluster: AirflowCluster, run_id: str, *, runs_before: int) -> None:
    assert cluster.asset_events(DAG_ID, run_id) == []
    cluster.assert_stays(lambda: len(_consumer_runs(cluster)) == runs_before, 5, f"{CONSUMER} not to run")


def _texts(slack: FakeSlackServer) -> list[str]:
    return [json.dumps(message) for message in slack.messages()]


def test_a_slack_errors_do_not_stop_the_review_or_the_publish(cluster, slack, journey) -> None:
    slack.fail(500)
    revise_landing(cluster, 11)
    run_id = cluster.trigger(DAG_ID)
    review_id = _open_review(cluster, run_id)
    build = content(cluster, "develop_dwh")
    assert build != journey["dwh"]
    # The reviewer reads the review from Slack (the fake recorded the attempt it answered with 500) and approves.
    alert = next(text for text in _texts(slack) if "WAP review" in text and "is open" in text)
    (announced,) = set(re.findall(r"WAP review ([0-9a-f]{12}) is open", alert))
    assert announced == review_id
    assert "Slack" in cluster.task_log(DAG_ID, run_id, "audit")  # the failed alert is logged, not raised
    cluster.variable_set(VARIABLE, f"approve {announced}")
    assert cluster.wait_for_run(DAG_ID, run_id, DECISION_TIMEOUT + BUILD_TIMEOUT) == "success"
    assert cluster.task_state(DAG_ID, run_id, "publish") == "success"
    assert content(cluster, "dwh") == build
    extra = _consumed_once(cluster, DAG_ID, run_id, runs_before=0)
    assert extra == {"action": "publish", "run_id": run_id, "review_id": review_id, "status": "changed"}
    journey.update(dwh=build, last_review=review_id)


def test_b_second_run_waits_and_the_review_survives_a_triggerer_crash(cluster, slack, journey) -> None:
    slack.reset()
    slack.drop_connections()
    revise_landing(cluster, 7)
    first = cluster.trigger(DAG_ID)
    review_id = _open_review(cluster, first)
    under_review = content(cluster, "develop_dwh")

    second = cluster.trigger(DAG_ID)
    cluster.assert_stays(
        lambda: (
            cluster.run_state(DAG_ID, second) == "queued"
            and all(state is None for state in cluster.task_states(DAG_ID, second).values())
        ),
        duration=15,
        what=f"the second run {second} to wait while review {review_id} is open",
    )
    assert content(cluster, "develop_dwh") == under_review  # nothing rebuilt the write schema

    cluster.restart("triggerer")
    cluster.wait_for(cluster._healthy, 120, "the restarted triggerer to report healthy")
    assert cluster.task_state(DAG_ID, first, "await_approval") == "deferred"
    cluster.variable_set(VARIABLE, f"approve {review_id}")
    cluster.wait_for_task(DAG_ID, first, "await_approval", "success", DECISION_TIMEOUT)
    assert cluster.wait_for_run(DAG_ID, first, BUILD_TIMEOUT) == "success"
    assert cluster.task_state(DAG_ID, first, "publish") == "success"
    assert _consumed_once(cluster, DAG_ID, first, runs_before=1)["review_id"] == review_id
    journey.update(second_run=second, last_review=review_id, expected_build=under_review, first_run=first)


def test_c_stale_and_foreign_approvals_are_ignored_then_the_review_times_out(cluster, slack, journey) -> None:
    second, stale = journey["second_run"], journey["last_review"]
    review_id = _open_review(cluster, second)  # the second run builds only now
    assert review_id != stale
    # The first run's publish happened before the second run's write: production is the first run's build.
    slack.reset()  # Slack is back
    cluster.variable_set(VARIABLE, f"approve {stale}")  # the previous review's approval, set again
    cluster.assert_stays(
        lambda: cluster.task_state(DAG_ID, second, "await_approval") == "deferred",
        THREE_POKES,
        "the stale approval to be waited out",
    )
    cluster.variable_set(VARIABLE, "approve 0123456789ab")  # a review id of no run
    cluster.assert_stays(
        lambda: cluster.task_state(DAG_ID, second, "await_approval") == "deferred",
        THREE_POKES,
        "another review's approval to be waited out",
    )
    assert cluster.wait_for_run(DAG_ID, second, TIMEOUT + DECISION_TIMEOUT) == "success"
    assert cluster.task_state(DAG_ID, second, "await_approval") == "skipped"
    assert cluster.task_state(DAG_ID, second, "publish") == "skipped"
    decision = cluster.xcom(DAG_ID, second, "await_approval", key="decision")
    assert decision["decision"] == "timeout" and decision["review_id"] == review_id
    assert content(cluster, "dwh") == journey["expected_build"]
    _nothing_announced(cluster, second, runs_before=2)
    cluster.wait_for(
        lambda: any("timed out" in text.lower() and review_id in text for text in _texts(slack)),
        30,
        "the timeout notice in Slack",
    )
    journey.update(dwh=journey["expected_build"])


def test_d_a_failing_dbt_test_opens_no_review_and_publishes_nothing(cluster, slack, journey) -> None:
    slack.reset()
    duckdb_execute(
        cluster.duckdb_path,
        "update ssb.befolkning_sysselsetting set value = -value where tid = '2022' and contentscode = ? and region = ("
        "select min(region) from ssb.befolkning_sysselsetting) and value > 0",
        ["Population by place of residence"],
    )
    before = cluster.variable_get(VARIABLE)
    run_id = cluster.trigger(DAG_ID)
    assert cluster.wait_for_run(DAG_ID, run_id, BUILD_TIMEOUT + RETRY_TIMEOUT) == "failed"
    states = cluster.task_states(DAG_ID, run_id)
    assert states["write.build"] == "failed" and states["write.int_sysselsetting_pivoted_run"] == "failed", states
    assert states["write.stg_ssb__befolkning_sysselsetting_run"] == "success", states
    assert states["audit"] == "upstream_failed" and states["publish"] == "upstream_failed", states
    assert cluster.xcom(DAG_ID, run_id, "audit") is None
    assert cluster.variable_get(VARIABLE) == before  # no review was opened
    assert content(cluster, "dwh") == journey["dwh"]
    unit_log = cluster.task_log(DAG_ID, run_id, "write.int_sysselsetting_pivoted_run")
    assert "Failed: test accepted_range_int_sysselsetting_pivoted_befolkning__0: fail" in unit_log, unit_log[-2000:]
    cluster.wait_for(
        lambda: any(
            "WAP task failed" in text and "write.build" in text and "of int_sysselsetting_pivoted" in text
            for text in _texts(slack)
        ),
        30,
        "the failure alert in Slack, naming the failed test's model",
    )
    tries = cluster._query_one(
        "select try_number from task_instance where dag_id = ? and run_id = ? and task_id = 'write.build'",
        (DAG_ID, run_id),
    )
    assert tries == (1,), "a failed dbt test is not retried: the data would fail it again"
    _nothing_announced(cluster, run_id, runs_before=2)
    duckdb_execute(  # repair the landing data
        cluster.duckdb_path,
        "update ssb.befolkning_sysselsetting set value = -value where value < 0",
    )
    journey.update(failed_run=run_id)


def test_d_clearing_the_failed_model_builds_nothing_clearing_the_build_rebuilds_from_production(
    cluster, slack, journey
) -> None:
    run_id = journey["failed_run"]
    unit = "write.int_sysselsetting_pivoted_run"
    half_built = content(cluster, "develop_dwh")
    assert cluster.clear(DAG_ID, run_id, [unit]) == [unit]
    cluster.wait_for(lambda: cluster.task_state(DAG_ID, run_id, unit) == "failed", 60, "the cleared unit to fail again")
    assert cluster.task_state(DAG_ID, run_id, "write.build") == "failed", "a unit never runs dbt"
    assert cluster.wait_for_run(DAG_ID, run_id, 60) == "failed"
    assert cluster.xcom(DAG_ID, run_id, "audit") is None and content(cluster, "develop_dwh") == half_built

    cleared = cluster.clear(DAG_ID, run_id, ["write.build"], downstream=True)  # "Clear" with "Downstream" in the UI
    assert {"write.build", unit, "audit", "await_approval", "publish"} <= set(cleared)
    review_id = _open_review(cluster, run_id)
    reset = cluster.xcom(DAG_ID, run_id, "write.build", key="wap_reset")
    assert sorted(reset["dropped"]) == sorted(half_built), "the retry started from production's state"
    states = cluster.task_states(DAG_ID, run_id)
    assert all(state == "success" for task, state in states.items() if task.startswith("write.")), states
    report = cluster.xcom(DAG_ID, run_id, "audit")
    assert report["dbt_tests"] and all(row["failed"] == 0 for row in report["dbt_tests"])
    cluster.variable_set(VARIABLE, f"reject {review_id}")
    assert cluster.wait_for_run(DAG_ID, run_id, DECISION_TIMEOUT) == "success"
    assert cluster.task_state(DAG_ID, run_id, "publish") == "skipped"
    assert content(cluster, "dwh") == journey["dwh"]
    _nothing_announced(cluster, run_id, runs_before=2)


def test_d2_a_build_killed_after_dbt_is_retried_from_the_reset_and_audited_once(cluster, slack, journey) -> None:
    (cluster.home / "failpoints").write_text("build.after_dbt\n", encoding="utf-8")
    run_id = cluster.trigger(DAG_ID)
    review_id = _open_review(cluster, run_id)
    assert (cluster.home / "failpoints").read_text(encoding="utf-8").strip() == "", "the failpoint fired"
    (tries,) = cluster._query_one(
        "select try_number from task_instance where dag_id = ? and run_id = ? and task_id = 'write.build'",
        (DAG_ID, run_id),
    )
    assert tries == 2
    reset = cluster.xcom(DAG_ID, run_id, "write.build", key="wap_reset")
    assert reset["dropped"], "the second try dropped what the killed first try had built"
    (audits,) = cluster._query_one(
        "select try_number from task_instance where dag_id = ? and run_id = ? and task_id = 'audit'", (DAG_ID, run_id)
    )
    assert audits == 1
    cluster.variable_set(VARIABLE, f"reject {review_id}")
    assert cluster.wait_for_run(DAG_ID, run_id, DECISION_TIMEOUT) == "success"
    assert content(cluster, "dwh") == journey["dwh"]


def test_e_publish_killed_after_the_swap_is_retried_as_a_no_op(cluster, slack, journey) -> None:
    revise_landing(cluster, 5)
    (cluster.home / "failpoints").write_text("publish.after_swap\n", encoding="utf-8")
    run_id = cluster.trigger(DAG_ID)
    review_id = _open_review(cluster, run_id)
    build = content(cluster, "develop_dwh")
    cluster.variable_set(VARIABLE, f"approve {review_id}")
    assert cluster.wait_for_run(DAG_ID, run_id, DECISION_TIMEOUT + RETRY_TIMEOUT) == "success"
    # The failpoint fired (it disarms itself) and killed the first try; the second try found the swap done.
    assert (cluster.home / "failpoints").read_text(encoding="utf-8").strip() == ""
    (tries,) = cluster._query_one(
        "select try_number from task_instance where dag_id = ? and run_id = ? and task_id = 'publish'",
        (DAG_ID, run_id),
    )
    assert tries == 2
    log = cluster.task_log(DAG_ID, run_id, "publish")
    assert "was published already (a retry after the swap)" in log, log[-3000:]
    assert content(cluster, "dwh") == build  # swapped once, not swapped back
    assert content(cluster, "develop_dwh") == journey["dwh"]  # the previous production, intact
    # The killed try announced nothing (Airflow records a task's events when it succeeds): the retry did, once.
    assert "The try that swapped ended before its announcement" in log, log[-3000:]
    assert _consumed_once(cluster, DAG_ID, run_id, runs_before=2)["review_id"] == review_id
    journey.update(dwh=build, previous_dwh=journey["dwh"], published_run=run_id)


def test_e2_a_cleared_publish_is_a_no_op_that_announces_nothing_again(cluster, slack, journey) -> None:
    run_id = journey["published_run"]
    events = cluster.asset_events(DAG_ID, run_id)
    assert cluster.clear(DAG_ID, run_id, ["publish"]) == ["publish"]
    assert cluster.wait_for_task(DAG_ID, run_id, "publish", "success", DECISION_TIMEOUT) == "success"
    assert cluster.wait_for_run(DAG_ID, run_id, DECISION_TIMEOUT) == "success"
    log = cluster.task_log(DAG_ID, run_id, "publish")
    assert "was announced by the try that swapped: nothing to announce again" in log, log[-3000:]
    assert cluster.asset_events(DAG_ID, run_id) == events
    cluster.assert_stays(lambda: len(_consumer_runs(cluster)) == 3, 5, f"{CONSUMER} not to run again")
    assert content(cluster, "dwh") == journey["dwh"]


def test_e3_a_rollback_announces_what_it_put_back(cluster, slack, journey) -> None:
    rollback = cluster.trigger("wap_dwh_rollback")
    assert cluster.wait_for_run("wap_dwh_rollback", rollback, DECISION_TIMEOUT) == "success"
    extra = _consumed_once(cluster, "wap_dwh_rollback", rollback, runs_before=3)
    assert extra["action"] == "rollback" and extra["rollback_run_id"] == rollback
    assert extra["run_id"] == journey["first_run"] and extra["withdrawn_run_id"] == journey["published_run"]
    assert content(cluster, "dwh") == journey["previous_dwh"]


def test_f_nothing_is_left_behind(cluster: AirflowCluster) -> None:
    """No open review or waiting task, no stray schema, bundle table or Variable, the failpoint disarmed."""
    left = leftovers(cluster, VARIABLE)
    assert not any(left.values()), left
    assert (cluster.home / "failpoints").read_text(encoding="utf-8").strip() == ""
