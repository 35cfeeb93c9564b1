"""The approval gate under the real scheduler, triggerer, dag processor and API server (issue 4, item 6).

One cluster for the module (``[core] parallelism = 1``: one worker slot in total), with the Write stage in
per-model mode (``WAP_WRITE_MODE=per_model``: Cosmos' task per dbt command, so that mode too runs whole cycles
under the real components; the other modules use the default one-build mode); the tests run in order:

a. ``wap_dwh`` builds, audits, opens review A and ``await_approval`` defers; the Variable and the Slack outbox
   name the review id of the audit's XCom.
b. While the sensor is deferred, ``wap_probe``'s task runs in the only slot: the deferred sensor holds none.
c. ``approve <another id>`` and a bare ``approve`` are logged and waited out, and production is untouched;
   ``approve A``, set from outside with the Airflow CLI, lets the run proceed: the decision is the sensor's
   XCom, and ``publish`` puts exactly the audited build into production.
d. A revised landing load, then a second run that meets the stale ``approve A``: it opens review B and waits;
   ``approve A`` again is waited out; ``reject B`` skips the sensor and ``publish``, ends the run and announces
   the reject.
e. Production holds exactly what review A approved (content hash per table, and the publish record):
   neither the stale approval nor the reject of review B published anything.

The warehouse file is read only while no task runs (DuckDB allows one writing process): before a run, while the
sensor is deferred (the probe has finished), or after a run has ended.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from .harness import AirflowCluster, duckdb_execute, duckdb_scalar, e2e_dag_files, schema_fingerprint

pytestmark = pytest.mark.integration

DAG_ID = "wap_dwh"
PROBE_DAG_ID = "wap_probe"
VARIABLE = "wap_approval__wap_dwh"
POKE_SECONDS = 2.0  # the cluster's WAP_APPROVAL_POKE_INTERVAL
THREE_POKES = 3 * POKE_SECONDS + 1
REVIEW_ID = re.compile(r"[0-9a-f]{12}")
BUILD_TIMEOUT = 360  # the dbt build (6 Cosmos tasks, one at a time) and the audit
DECISION_TIMEOUT = 90  # the triggerer fires, the scheduler queues, a worker resumes the sensor
BUNDLE_PREFIX = "_wap_"  # the bundle's own relations (marker, publish record)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowCluster]:
    """The four components on a fresh home and demo warehouse, the Write stage in per-model mode."""
    home = tmp_path_factory.mktemp("airflow-per-model")
    with AirflowCluster(home=home, dag_files=e2e_dag_files(), env={"WAP_WRITE_MODE": "per_model"}) as running:
        yield running


@pytest.fixture(scope="module")
def journey(cluster: AirflowCluster) -> dict[str, Any]:
    """What the ordered tests hand each other, starting with production as `wap demo reset` left it."""
    # No run has started yet, so no task has the warehouse open.
    return {"dwh_before": _prod(cluster)}


def _prod(cluster: AirflowCluster, **kwargs: Any) -> dict[str, Any]:
    return schema_fingerprint(cluster.duckdb_path, "dwh", **kwargs)


def _write(cluster: AirflowCluster, **kwargs: Any) -> dict[str, Any]:
    return schema_fingerprint(cluster.duckdb_path, "develop_dwh", **kwargs)


def _last_year(cluster: AirflowCluster, schema: str) -> str:
    return str(duckdb_scalar(cluster.duckdb_path, f"select max(tid) from {schema}.sysselsetting_forholdstall"))


def _other_id(review_id: str) -> str:
    return "0123456789ab" if review_id != "0123456789ab" else "ba9876543210"


def _deferred(cluster: AirflowCluster, run_id: str) -> bool:
    return cluster.task_state(DAG_ID, run_id, "await_approval") == "deferred"


def _waited_out(cluster: AirflowCluster, run_id: str, value: str, logged: str) -> None:
    """Set ``value``; the trigger logs why it is no decision (``logged``), and 3 pokes later nothing changed."""
    cluster.variable_set(VARIABLE, value)
    cluster.wait_for(
        lambda: logged in cluster.task_log(DAG_ID, run_id, "await_approval"),
        timeout=30,
        what=f"the approval trigger to log {logged!r} for {value!r}",
    )
    cluster.assert_stays(lambda: _deferred(cluster, run_id), THREE_POKES, f"await_approval deferred on {value!r}")
    assert cluster.run_state(DAG_ID, run_id) == "running"
    assert cluster.xcom(DAG_ID, run_id, "await_approval", "decision") is None
    assert cluster.task_state(DAG_ID, run_id, "publish") is None


def test_a_run_opens_a_review_and_the_sensor_defers(cluster: AirflowCluster, journey: dict[str, Any]) -> None:
    listening = {(host, port) for _, host, port in cluster.listening_sockets()}
    assert ("127.0.0.1", cluster.port) in listening, listening
    assert cluster.non_loopback_listeners() == [], "a component listens beyond the loopback interface"
    assert cluster.airflow("config", "get-value", "core", "parallelism", check=True).stdout.strip() == "1"
    assert _last_year(cluster, "dwh") == "2021"

    run_id = cluster.trigger(DAG_ID)
    cluster.wait_for_task(DAG_ID, run_id, "await_approval", "deferred", BUILD_TIMEOUT)
    states = cluster.task_states(DAG_ID, run_id)
    print(f"  await_approval deferred; tasks: {states}", flush=True)
    assert all(state == "success" for task, state in states.items() if task.startswith("write.") or task == "audit")

    report = cluster.xcom(DAG_ID, run_id, "audit")
    review_id = report["review_id"]
    assert REVIEW_ID.fullmatch(review_id) and report["run_id"] == run_id
    assert report["summary"]["rows_added"] > 0  # the 2022 load: publishing it would show in dwh
    assert cluster.variable_get(VARIABLE) == f"pending {review_id}"
    alert = cluster.wait_for(
        lambda: next(
            (m for m in cluster.outbox() if f"WAP review {review_id} is open for {DAG_ID}" in m["text"]), None
        ),
        timeout=30,
        what="the review-opened message in the Slack outbox",
    )
    assert f"'approve {review_id}'" in alert["text"] and f"wap approve {review_id}" in alert["text"]
    assert f"{cluster.base_url}/wap/reviews/{DAG_ID}/" in alert["text"]
    assert "Deferring (no worker slot is held while waiting)" in cluster.task_log(DAG_ID, run_id, "await_approval")

    # Deferred, nothing else running: the audited build and production can be read.
    assert _prod(cluster) == journey["dwh_before"]
    assert _last_year(cluster, "develop_dwh") == "2022"
    journey.update(run_a=run_id, review_a=review_id, build_a=_write(cluster, skip_prefix=BUNDLE_PREFIX))


def test_b_a_deferred_sensor_holds_no_worker_slot(cluster: AirflowCluster, journey: dict[str, Any]) -> None:
    run_id = journey["run_a"]
    assert _deferred(cluster, run_id)
    probe_run = cluster.trigger(PROBE_DAG_ID)

    def probe_done() -> bool:
        assert _deferred(cluster, run_id), "await_approval left 'deferred' while the probe was waiting"
        return cluster.task_state(PROBE_DAG_ID, probe_run, "probe") == "success"

    cluster.wait_for(probe_done, timeout=120, what="wap_probe's task to run in the only worker slot")
    assert cluster.xcom(PROBE_DAG_ID, probe_run, "probe") == "ran"
    assert cluster.wait_for_run(PROBE_DAG_ID, probe_run, timeout=60) == "success"
    assert _deferred(cluster, run_id)


def test_c_only_approve_of_this_review_publishes(cluster: AirflowCluster, journey: dict[str, Any]) -> None:
    run_id, review_id = journey["run_a"], journey["review_a"]
    other = _other_id(review_id)
    _waited_out(cluster, run_id, f"approve {other}", f"names review {other}, but the open review is {review_id}")
    _waited_out(cluster, run_id, "approve", "names no review id")
    assert _prod(cluster) == journey["dwh_before"]  # still deferred, the probe has ended: nothing runs

    cluster.variable_set(VARIABLE, f"approve {review_id}")
    cluster.wait_for_task(DAG_ID, run_id, "await_approval", "success", DECISION_TIMEOUT)
    decision = cluster.xcom(DAG_ID, run_id, "await_approval", "decision")
    assert decision["decision"] == "approve" and decision["review_id"] == review_id
    assert decision["value"] == f"approve {review_id}"
    assert cluster.xcom(DAG_ID, run_id, "await_approval") == decision  # also its return value
    cluster.wait_for_task(DAG_ID, run_id, "publish", "success", DECISION_TIMEOUT)
    assert cluster.wait_for_run(DAG_ID, run_id, timeout=60) == "success"
    print(f"  review {review_id} approved and published: {decision}", flush=True)

    # Production now holds exactly the audited build; the write schema holds the previous production.
    assert _prod(cluster, skip_prefix=BUNDLE_PREFIX) == journey["build_a"]
    assert _write(cluster, skip_prefix=BUNDLE_PREFIX) == {
        name: entry for name, entry in journey["dwh_before"].items() if not name.startswith(BUNDLE_PREFIX)
    }
    assert _last_year(cluster, "dwh") == "2022"
    journey["dwh_after_a"] = _prod(cluster)  # with the publish record: a second publish would change it


def test_d_a_stale_approval_never_decides_a_new_review_and_a_reject_ends_it(
    cluster: AirflowCluster, journey: dict[str, Any]
) -> None:
    first_id = journey["review_a"]
    stale = f"approve {first_id}"
    # A revised landing load (no task runs now): the next build differs from production, so a publish would show.
    duckdb_execute(
        cluster.duckdb_path,
        "update ssb.befolkning_sysselsetting set value = value + 100 where tid = '2022' and contentscode = ?",
        ["Population by place of residence"],
    )
    assert cluster.variable_get(VARIABLE) == stale  # left over from the first review
    run_id = cluster.trigger(DAG_ID)

    # While the write stage builds (before the audit opens the new review), the stale approval is in place.
    cluster.wait_for(
        lambda: any(s == "success" for t, s in cluster.task_states(DAG_ID, run_id).items() if t.startswith("write.")),
        timeout=BUILD_TIMEOUT,
        what="the second run's first write task",
    )
    audit_state = cluster.task_state(DAG_ID, run_id, "audit")
    value = cluster.variable_get(VARIABLE)
    assert audit_state not in ("running", "success") and value == stale, (audit_state, value)

    cluster.wait_for_task(DAG_ID, run_id, "await_approval", "deferred", BUILD_TIMEOUT)
    report = cluster.xcom(DAG_ID, run_id, "audit")
    review_id = report["review_id"]
    assert REVIEW_ID.fullmatch(review_id) and review_id != first_id
    assert report["summary"]["rows_changed"] > 0  # the revision
    assert cluster.variable_get(VARIABLE) == f"pending {review_id}"

    _waited_out(cluster, run_id, stale, f"names review {first_id}, but the open review is {review_id}")
    assert _prod(cluster) == journey["dwh_after_a"]

    cluster.variable_set(VARIABLE, f"reject {review_id}")
    cluster.wait_for_task(DAG_ID, run_id, "await_approval", "skipped", DECISION_TIMEOUT)
    assert cluster.wait_for_run(DAG_ID, run_id, timeout=60) == "success"  # skipped, nothing failed
    assert cluster.task_state(DAG_ID, run_id, "publish") == "skipped"
    decision = cluster.xcom(DAG_ID, run_id, "await_approval", "decision")
    assert decision["decision"] == "reject" and decision["review_id"] == review_id
    rejected = f"WAP review {review_id} of {DAG_ID} (run {run_id}) was rejected"
    cluster.wait_for(
        lambda: any(rejected in m["text"] for m in cluster.outbox()),
        timeout=30,
        what="the rejected message in the Slack outbox",
    )
    journey.update(run_b=run_id, review_b=review_id)
    print(f"  review {review_id} rejected: {decision}", flush=True)


def test_e_production_holds_only_what_was_approved(cluster: AirflowCluster, journey: dict[str, Any]) -> None:
    runs = [journey["run_a"], journey["run_b"]]
    assert [cluster.run_state(DAG_ID, run_id) for run_id in runs] == ["success", "success"]
    # Both runs have ended: no task holds the warehouse.
    assert _prod(cluster) == journey["dwh_after_a"]
    assert _prod(cluster, skip_prefix=BUNDLE_PREFIX) == journey["build_a"]
    assert _prod(cluster, skip_prefix=BUNDLE_PREFIX) != _write(cluster, skip_prefix=BUNDLE_PREFIX)  # B's build
    assert _last_year(cluster, "dwh") == "2022"
