"""`make demo`'s WAP cycle on the real Airflow components: run wap_dwh, wait for its review, decide like a reviewer.

The scheduler, dag processor, triggerer and API server run on 127.0.0.1 (``wap.local.cluster``, the same harness the
end-to-end tests use) with the project's ``AIRFLOW_HOME``, DAGs and embedded warehouse. This process triggers
``wap_dwh``, waits until ``await_approval`` is deferred, prints the Slack alert the outbox received, sets the
approval Variable with the Airflow CLI as a reviewer would, and shows what the approval task, ``publish`` and the
audit logged. The components stop at the end; `make airflow` shows the same runs and the "WAP reviews" view.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from wap.config import WapError

if TYPE_CHECKING:
    from wap.config import WapConfig
    from wap.local.cluster import AirflowCluster

BUILD_TIMEOUT = 600  # the dbt build (one Cosmos task at a time) and the audit
DECISION_TIMEOUT = 180
#: Lines of the approval task's and publish's logs that tell the story (the rest is in the task logs).
STORY = re.compile(
    r"(Review [0-9a-f]{12} is open until \S+"
    r"|Not decided: [^\"']*?slot is held while waiting\)"
    r"|Review [0-9a-f]{12} (approved|rejected)[^\"'\]]*?(proceed|published)"
    r"|Published review [0-9a-f]{12} of run \S+ into \w+"
    r"|Review [0-9a-f]{12} \w+[^\"'\]]*nothing will be published)"
)


class DemoCycleError(WapError):
    """The demo run failed or never opened a review; the message says where to look."""


def _story(log: str) -> list[str]:
    seen: list[str] = []
    for match in STORY.finditer(log):
        line = match.group(0).rstrip(" ,:")
        if line not in seen:
            seen.append(line)
    return seen


def _print_alerts(cluster: AirflowCluster, skip: int) -> int:
    messages = cluster.outbox()
    for message in messages[skip:]:
        print(f"--- Slack message ({message.get('channel', 'outbox')}, {cluster.outbox_path}) ---")
        print(message.get("text", ""))
        print("---")
    if len(messages) == skip:
        print(f"(no message reached the outbox {cluster.outbox_path}: a Slack connection may be configured)")
    return len(messages)


def fail_unfinished_runs(dag_id: str) -> list[str]:
    """Mark runs an interrupted earlier demo left queued or running as failed: one run at a time may be active,
    so a leftover would keep the new run queued forever. Call it while no scheduler runs."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, State, TaskInstanceState
    from sqlalchemy import select

    with create_session() as session:
        runs = session.scalars(
            select(DagRun).where(DagRun.dag_id == dag_id, DagRun.state.in_([DagRunState.QUEUED, DagRunState.RUNNING]))
        ).all()
        for run in runs:
            for task in run.get_task_instances(state=list(State.unfinished), session=session):
                task.set_state(TaskInstanceState.FAILED, session=session)  # a deferred sensor's trigger too
            run.set_state(DagRunState.FAILED)
        return [run.run_id for run in runs]


def run_cycle(config: WapConfig, cluster: AirflowCluster, *, verb: str = "approve") -> str:
    """Run wap_dwh through review and decision on ``cluster``; returns the run's final state."""
    from wap.audit.markdown import render_markdown

    dag_id = config.dag_id
    seen = len(cluster.outbox())
    cluster.airflow("dags", "unpause", dag_id, check=True)  # a DAG first seen by `airflow dags test` is paused
    run_id = cluster.trigger(dag_id, run_id=f"wap_demo__{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%S}")
    print(f"== {dag_id} run {run_id}: Write (dbt build into {config.write_schema}), Audit, then a reviewer ==")
    try:
        cluster.wait_for_task(dag_id, run_id, "await_approval", "deferred", BUILD_TIMEOUT)
    except AssertionError as error:
        raise DemoCycleError(f"{dag_id} did not open a review:\n{error}") from None
    report = cluster.xcom(dag_id, run_id, "audit")
    review_id = report["review_id"]
    value = cluster.variable_get(config.approval_variable)
    print(f"== Review {review_id} is open: {config.approval_variable} = {value!r}")
    print(f"   the review page: {cluster.base_url}/wap/reviews/{dag_id}/{run_id} ==\n")
    seen = _print_alerts(cluster, seen)

    command = ["airflow", "variables", "set", config.approval_variable, f"{verb} {review_id}"]
    print(f"\n== A reviewer decides ({verb}) ==\n$ {shlex.join(command)}")
    cluster.airflow(*command[1:], check=True)
    state = cluster.wait_for_run(dag_id, run_id, DECISION_TIMEOUT + BUILD_TIMEOUT)

    print("\n== await_approval (deferred to the triggerer, no worker slot held) and publish ==")
    for task_id in ("await_approval", "publish"):
        for line in _story(cluster.task_log(dag_id, run_id, task_id)):
            print(f"  {task_id}: {line}")
    print(f"  run {run_id}: {state}; tasks: {cluster.task_states(dag_id, run_id)}")
    _print_alerts(cluster, seen)
    print("\n== The audit's report (the audit task's XCom, rendered as its log shows it) ==")
    print(render_markdown({k: v for k, v in report.items() if k != "review_id"}, review_id))
    return state


def main(argv: list[str] | None = None) -> int:
    import argparse

    from wap.config import PROJECT_DIR, load_config
    from wap.local.cluster import AirflowCluster

    parser = argparse.ArgumentParser(prog="python -m wap.local.demo_cycle", description=__doc__.splitlines()[0])
    parser.add_argument("--decision", choices=["approve", "reject"], default="approve")
    parser.add_argument("--home", type=Path, default=None, help="AIRFLOW_HOME (default: $AIRFLOW_HOME)")
    args = parser.parse_args(argv)
    config = load_config()
    home = args.home or Path(os.environ.get("AIRFLOW_HOME", PROJECT_DIR / ".airflow"))
    for run_id in fail_unfinished_runs(config.dag_id):
        print(f"(marked {config.dag_id} run {run_id}, left unfinished by an earlier demo, as failed)")
    print(f"== Starting Airflow's API server, scheduler, dag processor and triggerer ({home}) ==")
    try:
        with AirflowCluster(
            home=home,
            dags_folder=PROJECT_DIR / "dags",
            duckdb_path=config.duckdb_path,
            outbox_path=config.slack_outbox,
            demo_reset=False,
            env={name: value for name, value in os.environ.items() if name.startswith("WAP_")},
            poke_interval=f"{int(config.approval_poke_interval.total_seconds())}s",
        ) as cluster:
            state = run_cycle(config, cluster, verb=args.decision)
    except (WapError, AssertionError) as error:
        print(f"demo: error: {error}", file=sys.stderr)
        print(f"demo: component logs in {home / 'components'}, task logs in {home / 'logs'}", file=sys.stderr)
        return 2
    return 0 if state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
