"""`wap cycle`: one WAP cycle of the configured dbt project on the real Airflow components, decided like a reviewer.

The scheduler, dag processor, triggerer and API server run on 127.0.0.1 (``wap.local.cluster``, the same harness the
end-to-end tests use) with ``AIRFLOW_HOME`` (default: the project's ``.airflow``; a new home is migrated and gets the
bundle's ``airflow_settings.yaml``), the bundle's DAGs and the configured warehouse; no data is reset. Before the
components start, the project is prepared (`wap dbt prepare`: profile, packages, manifest) and, on DuckDB, a missing
warehouse file is created (an empty production: the first publish creates it).

Then this process triggers ``wap_dwh``, waits until the audit has opened the review (or the run ends: a failed build),
prints the Slack alert the outbox received, decides as a reviewer would (``approve``/``reject``: the Airflow CLI sets
the approval Variable; ``none``: someone else decides, in the review view or with `wap approve`), waits for the end
and shows what the approval task, ``publish`` and the audit logged. The components stop at the end; `make airflow`
shows the same runs and the "WAP reviews" view. `make demo` runs it on the demo project.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wap.approval.protocol import POLICY_XCOM_KEY
from wap.config import WapError

if TYPE_CHECKING:
    from wap.config import WapConfig
    from wap.local.cluster import AirflowCluster

BUILD_TIMEOUT = 600  # the dbt build (one Cosmos task at a time) and the audit
DECISION_TIMEOUT = 180  # from a decision to the end of the run (the sensor's poke, the publish)
DOWNSTREAM_TIMEOUT = 180  # from the publish to the end of the runs its Asset events trigger
#: The bundle's example DAG scheduled on a published relation's Asset (dags/example_wap_consumer.py).
EXAMPLE_CONSUMER = "example_wap_consumer"
#: What the example consumer logs about the table it read.
CONSUMER_LINE = re.compile(r"\w+\.\w+ has \d+ rows[^\"'\n\\]*")
#: Lines of the approval task's and publish's logs that tell the story (the rest is in the task logs).
STORY = re.compile(
    r"(Review [0-9a-f]{12} is open until \S+"
    r"|Not decided: [^\"']*?slot is held while waiting\)"
    r"|Review [0-9a-f]{12} (approved|rejected)[^\"'\]]*?(proceed|published)"
    r"|Published review [0-9a-f]{12} of run \S+ into \w+( \(approved by [^)\"']*\))?"
    r"|Review [0-9a-f]{12} \w+[^\"'\]]*nothing will be published)"
)


DECISIONS = ("approve", "reject", "none")
#: What each decision must end in for the cycle to count as carried out (exit 0).
CARRIED_OUT = {"approve": {"published"}, "reject": {"rejected"}, "none": {"published", "rejected"}}
#: Lines of a failed dbt task's log that say why: up to a quote, backslash, newline or colour code (the task log's
#: lines are JSON).
DBT_FAILURE = re.compile(
    r"(Failure in test [^\"\\\n\x1b]*|Got \d+ results?, configured to fail[^\"\\\n\x1b]*"
    r"|\w+ Error in \w+ [^\"\\\n\x1b]*|Database Error[^\"\\\n\x1b]*)"
)


@dataclass
class CycleResult:
    """How one cycle ended: ``outcome`` is ``published``, ``rejected``, ``timed out``, ``build failed`` (no review
    opened) or ``failed`` (after the review: the publish refused or broke)."""

    outcome: str
    run_id: str
    review_id: str | None = None
    state: str | None = None
    decision: str = "none"
    failed_tasks: list[str] = field(default_factory=list)
    seconds: dict[str, float | None] = field(default_factory=dict)
    announced: list[dict[str, Any]] = field(default_factory=list)  # the run's Asset events: uri, extra
    downstream: list[dict[str, Any]] = field(default_factory=list)  # the runs they triggered: dag_id, run_id, state
    by_policy: bool = False  # the review policy approved it: nobody decided

    @property
    def carried_out(self) -> bool:
        return self.outcome in CARRIED_OUT[self.decision]

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "run_id": self.run_id,
            "review_id": self.review_id,
            "state": self.state,
            "decision": self.decision,
            "failed_tasks": self.failed_tasks,
            "seconds": self.seconds,
            "announced": self.announced,
            "downstream": self.downstream,
            "by_policy": self.by_policy,
        }


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


def run_cycle(
    config: WapConfig,
    cluster: AirflowCluster,
    *,
    decision: str = "approve",
    conf: dict[str, Any] | None = None,
    build_timeout: float = BUILD_TIMEOUT,
) -> CycleResult:
    """Run wap_dwh on ``cluster`` through its review and ``decision``; returns how it ended. ``build_timeout``: how
    long the build and the audit may take before this gives up."""
    from wap.audit.markdown import render_markdown

    dag_id = config.dag_id
    seen = len(cluster.outbox())
    cluster.airflow("dags", "unpause", dag_id, check=True)  # a DAG first seen by `airflow dags test` is paused
    if EXAMPLE_CONSUMER in cluster.serialized_dags():
        cluster.unpause(EXAMPLE_CONSUMER)
    run_id = cluster.trigger(dag_id, conf=conf, run_id=f"wap_cycle__{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%S}")
    triggered = cluster.run_created_at(dag_id, run_id) or time.time()  # not the CLI's start-up
    result = CycleResult(outcome="failed", run_id=run_id, decision=decision)
    print(f"== {dag_id} run {run_id}: Write (dbt build into {config.write_schema}), Audit, then a reviewer ==")

    def review_or_end() -> str | None:  # the audit has opened the review: the Variable is pending, the alert sent
        if cluster.task_state(dag_id, run_id, "audit") == "success":
            return "review"
        return "ended" if cluster.run_state(dag_id, run_id) in ("success", "failed") else None

    waited = cluster.wait_for(review_or_end, build_timeout, f"{dag_id} run {run_id} to open its review", interval=0.25)
    if waited == "ended":
        result.state, result.outcome = cluster.run_state(dag_id, run_id), "build failed"
        result.failed_tasks = _failed_tasks(cluster, dag_id, run_id)
        result.seconds = {"trigger_to_review": None, "decision_to_end": None}
        print(f"== {dag_id} run {run_id} ended {result.state} before its review: nothing was audited or published ==")
        for task_id in result.failed_tasks:
            print(f"  {task_id}: failed")
            for line in _dbt_failures(cluster.task_log(dag_id, run_id, task_id)):
                print(f"    {line}")
        print(f"  task logs: {cluster.home / 'logs'}")
        return result
    opened = time.time()
    report = cluster.xcom(dag_id, run_id, "audit")
    result.review_id = review_id = report["review_id"]
    value = cluster.variable_get(config.approval_variable)
    print(f"== Review {review_id} is open: {config.approval_variable} = {value!r}", end="")
    print(" (the review policy approved it as the audit opened it)" if str(value).startswith("approve") else "")
    print(f"   the review page: {cluster.base_url}/wap/reviews/{dag_id}/{run_id} ==\n")
    seen = _print_alerts(cluster, seen)
    verdict = _print_policy(cluster.xcom(dag_id, run_id, "audit", key=POLICY_XCOM_KEY))
    by_policy = bool(verdict and verdict.get("publish"))
    result.by_policy = by_policy

    if by_policy:
        print("\n== Nobody decides: await_approval finds the policy's approval, publish follows ==")
        if decision == "reject":
            print("   (--decision reject comes too late: the policy approved the review when the audit opened it)")
        decided = time.time()
    elif decision == "none":
        print(
            f"\n== Waiting for a reviewer: the review page above, or `wap approve {review_id}` / "
            f"`wap reject {review_id}` with AIRFLOW_HOME={cluster.home} ==",
            flush=True,
        )
        pending = value

        def decided_or_ended() -> float | None:  # a decision, or the review's timeout (the run ends undecided)
            changed = cluster.variable_get(config.approval_variable) != pending
            return time.time() if changed or cluster.run_state(dag_id, run_id) in ("success", "failed") else None

        decided = cluster.wait_for(
            decided_or_ended,
            config.review_timeout.total_seconds() + DECISION_TIMEOUT,
            f"a decision on review {review_id}",
            interval=0.5,
        )
    else:
        command = ["airflow", "variables", "set", config.approval_variable, f"{decision} {review_id}"]
        print(f"\n== A reviewer decides ({decision}) ==\n$ {shlex.join(command)}")
        cluster.airflow(*command[1:], check=True)
        decided = time.time()  # the Variable is set when the CLI returns: its start-up is not the pipeline's
    result.state = cluster.wait_for_run(dag_id, run_id, DECISION_TIMEOUT + build_timeout, interval=0.25)
    ended = time.time()
    result.seconds = {"trigger_to_review": round(opened - triggered, 1), "decision_to_end": round(ended - decided, 1)}

    states = cluster.task_states(dag_id, run_id)
    final_value = cluster.variable_get(config.approval_variable) or ""
    if states.get("publish") == "success":
        result.outcome = "published"
    elif states.get("await_approval") == "skipped":
        result.outcome = "rejected" if final_value.startswith("reject") else "timed out"
    else:
        result.failed_tasks = _failed_tasks(cluster, dag_id, run_id)
    print("\n== await_approval (deferred to the triggerer, no worker slot held) and publish ==")
    for task_id in ("await_approval", "publish"):
        for line in _story(cluster.task_log(dag_id, run_id, task_id)):
            print(f"  {task_id}: {line}")
    outcome = f"{result.outcome} by policy" if result.by_policy and result.outcome == "published" else result.outcome
    print(f"  run {run_id}: {result.state}, {outcome}; tasks: {_summary(states)}")
    _print_alerts(cluster, seen)
    result.announced, result.downstream = _downstream(cluster, dag_id, run_id, published=result.outcome == "published")
    print("\n== The audit's report (the audit task's XCom, rendered as its log shows it) ==")
    print(render_markdown({k: v for k, v in report.items() if k != "review_id"}, review_id))
    return result


def _print_policy(policy: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the review policy decided (the audit's ``policy`` XCom), as the cycle's output says it."""
    from wap.policy import rule_lines

    verdict = (policy or {}).get("verdict")
    if not verdict:
        print("== No review policy: a person decides ==")
        return None
    if verdict.get("publish"):
        print(f"== Approved by policy ({verdict['source']}): every rule held ==")
    else:
        print(f"== The review policy ({verdict['source']}) did not approve it: a person decides ==")
        if verdict.get("error"):
            print(f"   {verdict['error']}")
    for line in rule_lines(verdict):
        print(f"   {line}")
    return verdict


def _downstream(
    cluster: AirflowCluster, dag_id: str, run_id: str, *, published: bool = False
) -> tuple[list[dict], list[dict]]:
    """The Asset events the run emitted, and the runs of the DAGs scheduled on them, once they have ended."""
    events = cluster.asset_events(dag_id, run_id)
    if not events:
        why = "the publish changed no relation" if published else "nothing was published"
        print(f"\n== Downstream: no Asset event ({why}): no DAG scheduled on its relations ran ==")
        return [], []
    print(f"\n== Downstream: the publish announced {len(events)} relation(s) as Airflow Assets ==")
    for event in events:
        extra = event["extra"] or {}
        print(f"  {event['uri']} ({extra.get('status')}; run {extra.get('run_id')}, review {extra.get('review_id')})")
    consumers = cluster.asset_consumers(event["uri"] for event in events)
    ids = [event["id"] for event in events]

    def ended() -> list[tuple[str, str, str | None]] | None:
        runs = cluster.runs_triggered_by(ids)
        return runs if set(consumers) <= {dag for dag, _, state in runs if state in ("success", "failed")} else None

    runs: list[tuple[str, str, str | None]] = []
    if consumers:
        runs = cluster.wait_for(ended, DOWNSTREAM_TIMEOUT, f"the runs of {consumers} to end", interval=0.5)
    else:
        print("  (no unpaused DAG is scheduled on these Assets)")
    for consumer, consumer_run, state in runs:
        print(f"  {consumer} run {consumer_run}: {state}")
        if state != "success":
            print(f"    its task logs: {cluster.home / 'logs' / f'dag_id={consumer}' / f'run_id={consumer_run}'}")
        for task_id in cluster.task_states(consumer, consumer_run):
            for line in dict.fromkeys(CONSUMER_LINE.findall(cluster.task_log(consumer, consumer_run, task_id))):
                print(f"    {task_id}: {line}")
    announced = [{"uri": event["uri"], "extra": event["extra"]} for event in events]
    return announced, [{"dag_id": dag, "run_id": run, "state": state} for dag, run, state in runs]


def _failed_tasks(cluster: AirflowCluster, dag_id: str, run_id: str) -> list[str]:
    return sorted(task for task, state in cluster.task_states(dag_id, run_id).items() if state == "failed")


def _dbt_failures(log: str) -> list[str]:
    seen: list[str] = []
    for match in DBT_FAILURE.finditer(log):
        line = match.group(0).strip()[:300]
        if line not in seen:
            seen.append(line)
    return seen[:10]


def _summary(states: dict[str, str | None]) -> str:
    """Task states counted: ``success 23, skipped 1``."""
    counts: dict[str, int] = {}
    for state in states.values():
        counts[str(state)] = counts.get(str(state), 0) + 1
    return ", ".join(f"{state} {count}" for state, count in sorted(counts.items()))


def prepare_warehouse(config: WapConfig) -> None:
    """On DuckDB, create a missing warehouse file: an empty production, so every relation is "added"."""
    if config.warehouse != "duckdb" or config.duckdb_path.exists():
        return
    import duckdb

    config.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    duckdb.connect(str(config.duckdb_path)).close()
    print(f"(created the empty warehouse {config.duckdb_path}: production starts empty)")


def cycle(
    decision: str,
    *,
    as_json: bool = False,
    conf: dict[str, Any] | None = None,
    home: Path | None = None,
) -> int:
    """`wap cycle`: prepare, start the components, run one cycle, stop them. Exit 0 when ``decision`` was carried
    out (published, or rejected with nothing published), 1 when the cycle ended otherwise; an error (a component
    that dies, a wait that times out) is a :class:`WapError` naming the logs."""
    from wap.config import PROJECT_DIR, load_config

    home = home or Path(os.environ.get("AIRFLOW_HOME") or PROJECT_DIR / ".airflow")
    os.environ["AIRFLOW_HOME"] = str(home)  # before Airflow is imported: this process reads the same database
    config = load_config()
    from wap.dbt.prepare import prepare
    from wap.local.cluster import AirflowCluster

    new_home = not (home / "airflow.db").exists()
    prepared = prepare(config)
    print(f"== dbt project {prepared.name} ({config.dbt_project_dir}) prepared in {prepared.path} ==")
    prepare_warehouse(config)
    if not new_home:
        for run_id in fail_unfinished_runs(config.dag_id):
            print(f"(marked {config.dag_id} run {run_id}, left unfinished by an earlier cycle, as failed)")
    print(f"== Starting Airflow's API server, scheduler, dag processor and triggerer ({home}) ==")
    port = os.environ.get("AIRFLOW__API__PORT")
    try:
        with AirflowCluster(
            home=home,
            dags_folder=PROJECT_DIR / "dags",
            duckdb_path=config.duckdb_path,
            outbox_path=config.slack_outbox,
            demo_reset=False,
            apply_settings=new_home,
            env={name: value for name, value in os.environ.items() if name.startswith("WAP_")},
            poke_interval=f"{int(config.approval_poke_interval.total_seconds())}s",
            port=int(port) if port and decision == "none" else None,  # a reviewer opens the view: a known port
        ) as cluster:
            result = run_cycle(config, cluster, decision=decision, conf=conf)
    except AssertionError as error:  # ClusterError: a component died, a wait timed out, a CLI call failed
        raise WapError(f"{error}\ncomponent logs in {home / 'components'}, task logs in {home / 'logs'}") from None
    if not result.carried_out:
        why = f"the cycle ended {result.outcome!r}"
        if result.failed_tasks:
            why += f" (failed: {', '.join(result.failed_tasks)})"
        print(f"wap cycle: {why}, not as decided ({decision}); logs in {home / 'logs'}", file=sys.stderr)
    if as_json:
        print(json.dumps(result.as_dict()))
    return 0 if result.carried_out else 1
