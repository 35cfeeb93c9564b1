"""A soak: 20 consecutive WAP cycles on the real components (approve, reject and timeout mixed), `make test-slow`.

Every cycle revises the 2022 landing data, so every build differs from production. After each cycle:

- approve: production is exactly the build that was reviewed, and the write schema exactly the production
  before it (the swap moved both, nothing else);
- reject and timeout: production is exactly what it was, and the sensor's decision says why.

At the end nothing may be left behind (``leftovers``): no unfinished run or waiting task, no scratch schema, no
bundle table other than the markers and the publish record, no Variable other than the approval Variable and its
"decided by" record. The cycle times are printed (``-s``) as the soak's report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from .harness import AirflowCluster, content, leftovers, revise_landing

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAG_ID = "wap_dwh"
VARIABLE = "wap_approval__wap_dwh"
TIMEOUT = 30  # seconds: WAP_REVIEW_TIMEOUT of the soak's cluster
#: 20 cycles: 12 approve, 4 reject, 4 timeout. SOAK_CYCLES runs the first N (a quick check of the soak itself).
CYCLES = (["approve", "reject", "approve", "timeout", "approve"] * 4)[: int(os.environ.get("SOAK_CYCLES", "20"))]
BUILD_TIMEOUT = 420
DECISION_TIMEOUT = 180


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowCluster]:
    env = {"WAP_REVIEW_TIMEOUT": f"{TIMEOUT}s"}
    with AirflowCluster(home=tmp_path_factory.mktemp("airflow-soak"), env=env) as running:
        yield running


def test_twenty_cycles_leave_production_right_and_nothing_behind(cluster: AirflowCluster) -> None:
    production = content(cluster, "dwh")
    report = []
    for number, decision in enumerate(CYCLES, start=1):
        revise_landing(cluster, number)
        started = time.monotonic()
        run_id = cluster.trigger(DAG_ID)
        cluster.wait_for_task(DAG_ID, run_id, "await_approval", "deferred", BUILD_TIMEOUT)
        review_id = cluster.xcom(DAG_ID, run_id, "audit")["review_id"]
        opened = time.monotonic()
        build = content(cluster, "develop_dwh")
        assert build != production, f"cycle {number}: the revised landing data did not change the build"
        if decision != "timeout":
            cluster.variable_set(VARIABLE, f"{decision} {review_id}")
        state = cluster.wait_for_run(DAG_ID, run_id, DECISION_TIMEOUT + TIMEOUT)
        finished = time.monotonic()
        tasks = cluster.task_states(DAG_ID, run_id)
        sensor = cluster.xcom(DAG_ID, run_id, "await_approval", key="decision")
        assert state == "success", (number, decision, tasks)
        assert sensor["decision"] == decision and sensor["review_id"] == review_id, (number, sensor)
        if decision == "approve":
            assert tasks["publish"] == "success", (number, tasks)
            assert content(cluster, "dwh") == build, f"cycle {number}: production is not the reviewed build"
            assert content(cluster, "develop_dwh") == production, f"cycle {number}: the previous production is lost"
            production = build
        else:
            assert tasks["publish"] == "skipped", (number, tasks)
            assert content(cluster, "dwh") == production, f"cycle {number}: production changed on a {decision}"
        report.append((number, decision, review_id, opened - started, finished - opened))

    print("\nsoak: cycle, decision, review, build+audit s, decision->end s")
    for number, decision, review_id, build_seconds, end_seconds in report:
        print(f"soak: {number:2d} {decision:8s} {review_id} {build_seconds:6.1f} {end_seconds:6.1f}")
    left = leftovers(cluster, VARIABLE)
    print(f"soak: leftovers {left}")
    assert not any(left.values()), left
