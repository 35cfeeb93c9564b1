"""One-build mode of the Write stage: one ``dbt build`` in one task, one Airflow task per node that shows it.

- :class:`DbtBuildProducer` (``write.build``) resets the write schema (:func:`wap.write.reset.reset_for_run`), then
  runs the whole project as one ``dbt build`` with dbt's threads, through Cosmos' local operator (the bundle's
  profile, the prepared copy linked, not copied, into a temporary directory, partial parsing reused). It reads
  dbt's JSON log line by line (:mod:`wap.write.progress`) and publishes every node's state as one XCom, at most
  twice a second, then the test counts the audit reports. Every try starts from the reset: a retried or cleared
  build never extends a half-built schema.
- :class:`DbtUnitWatcher` (``write.<model>_run``, ``<seed>_seed``, ``<snapshot>_snapshot``, ``<test>_test``)
  is the node's task in the UI: its state is the node's and its tests' result, its log is their dbt lines. It starts
  in the triggerer (``start_from_trigger``) and ends there (:class:`~airflow.triggers.base.TaskSuccessEvent`), so it
  never takes a worker slot or starts a process: that is what makes one task per model affordable where Cosmos'
  own watcher sensors each start twice on a worker. It never runs dbt; clearing it judges again from the build's
  state, and only clearing ``write.build`` builds again.
- :class:`BuildProgressTrigger`: the poll of those tasks, shared: every trigger of a run reads the producer's one
  XCom and state through one fetch per interval (:func:`_shared_fetch`), however many units wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, StartTriggerArgs, TaskFailedEvent, TaskSuccessEvent, TriggerEvent
from cosmos.operators.local import DbtBuildLocalOperator

from wap import failpoints
from wap.write.progress import (
    FAILED_STATUSES,
    BuildProgress,
    dbt_test_rows,
    describe_failures,
    unit_verdict,
)

if TYPE_CHECKING:
    from wap.dbt.units import BuildUnit

log = logging.getLogger(__name__)

#: The producer's XCom keys: every node's state (a :class:`~wap.write.progress.BuildProgress` snapshot), the
#: report's test counts, and what the reset did.
PROGRESS_XCOM_KEY = "wap_build_progress"
TEST_ROWS_XCOM_KEY = "wap_dbt_test_rows"
RESET_XCOM_KEY = "wap_reset"
PRODUCER_TASK_ID = "build"
#: Seconds between two publications of the progress (the producer) and two polls of it (the units' triggers).
PUBLISH_INTERVAL = 0.5
POLL_INTERVAL = 1.0


class DbtBuildProducer(DbtBuildLocalOperator):
    """Reset the write schema, then one ``dbt build`` of the project, publishing each node's state as it goes.

    ``units``: ``(label, node ids)`` of every unit, for the report's test counts. A failed dbt test fails the task
    without a retry (the data would fail it again); an error (SQL, connection) is retried from the reset.
    """

    ui_color = "#e5f0ff"

    def __init__(self, *, units: Sequence[tuple[str, Sequence[str]]] = (), **kwargs: Any) -> None:
        kwargs.setdefault("emit_datasets", False)
        kwargs["should_store_compiled_sql"] = False  # SQL of every model: see each model's compiled file instead
        super().__init__(**kwargs)
        self.log_format = "json"
        self.units = [(label, tuple(node_ids)) for label, node_ids in units]
        self._progress = BuildProgress()
        self._published = 0.0
        self._ti: Any = None

    def execute(self, context: Any, **kwargs: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowException, AirflowFailException

        from wap.config import WapError, load_config
        from wap.write.reset import reset_for_run

        ti = context["ti"]
        self._ti = ti
        try:
            reset = reset_for_run(load_config(), context["dag_run"].conf)
        except WapError as error:
            raise AirflowFailException(f"WAP: {error}") from None
        ti.xcom_push(key=RESET_XCOM_KEY, value=reset)
        self.log.info(
            "Write schema reset: %d relation(s) dropped, %d carried from production%s",
            len(reset["dropped"]),
            len(reset["carried"]),
            " (full refresh)" if reset["full_refresh"] else "",
        )
        self._progress = BuildProgress(try_number=int(getattr(ti, "try_number", 1) or 1))
        self._process_log_line_callable = self._on_line
        self._publish(force=True)
        try:
            super().execute(context, **kwargs)
            failpoints.crash_if_armed("build.after_dbt")
        except Exception as error:
            failures = self._progress.failures()
            if not failures:
                raise
            owners = {uid: label for label, node_ids in self.units for uid in node_ids[1:]}
            message = f"dbt build failed: {describe_failures(failures, owners)}"
            if all(status == "fail" for _, status, _ in failures):
                raise AirflowFailException(message + " (a failed test is not retried)") from error
            raise AirflowException(message) from error
        finally:
            self._progress.finish()
            self._publish(force=True)
            ti.xcom_push(key=TEST_ROWS_XCOM_KEY, value=dbt_test_rows(self._progress.snapshot(), self.units))
        counts: dict[str, int] = {}
        for node in self._progress.nodes.values():
            counts[node["status"]] = counts.get(node["status"], 0) + 1
        return {"reset": reset, "nodes": counts}

    def _on_line(self, raw: str, extra: Any = None) -> None:
        """Each line of dbt's output: logged as dbt would print it, fed to the progress, published when due."""
        line = self._progress.feed(raw)
        if line.message and line.is_info:
            level = logging.ERROR if line.status in FAILED_STATUSES or line.level == "error" else logging.INFO
            self.log.log(level, "%s", line.message)
        self._publish()

    def _publish(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._ti is None or not (force or (self._progress.changed and now - self._published >= PUBLISH_INTERVAL)):
            return
        self._ti.xcom_push(key=PROGRESS_XCOM_KEY, value=self._progress.snapshot())
        self._progress.changed = False
        self._published = now


class DbtUnitWatcher(BaseOperator):
    """The task of one unit (a node and its tests): succeeds or fails with them, in the triggerer, never on a worker.

    ``node_ids``: the node first, then its tests; ``producer_task_id``: the build's task; ``producer_retries``: its
    retries, so that a failure on a try that will be retried waits for the retry.
    """

    ui_color = "#f0f7ff"
    start_from_trigger = True

    def __init__(
        self,
        *,
        producer_task_id: str,
        node_ids: Sequence[str],
        producer_retries: int = 0,
        poll_interval: float = POLL_INTERVAL,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 0)  # a retry would only judge the same build again; retry the build instead
        super().__init__(**kwargs)
        self.producer_task_id = producer_task_id
        self.node_ids = list(node_ids)
        self.producer_retries = producer_retries
        self.poll_interval = poll_interval
        classpath, trigger_kwargs = BuildProgressTrigger(
            producer_task_id, node_ids, producer_retries=producer_retries, poll_interval=poll_interval
        ).serialize()
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls=classpath,
            trigger_kwargs=trigger_kwargs,
            next_method="execute_complete",
            next_kwargs=None,
            timeout=None,
        )

    def execute(self, context: Any) -> None:
        """Only when the scheduler could not start it in the triggerer: defer to the same trigger."""
        self.defer(
            trigger=BuildProgressTrigger(**self.start_trigger_args.trigger_kwargs), method_name="execute_complete"
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> None:
        from airflow.sdk.exceptions import AirflowException

        event = event or {}
        if event.get("state") == "failed":
            raise AirflowException(event.get("reason") or "the node failed in the build")


class BuildProgressTrigger(BaseTrigger):
    """Waits for one unit's result in the producer's progress; ends the task itself (success or failure)."""

    def __init__(
        self,
        producer_task_id: str,
        node_ids: Sequence[str],
        producer_retries: int = 0,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        super().__init__()
        self.producer_task_id = producer_task_id
        self.node_ids = list(node_ids)
        self.producer_retries = producer_retries
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{__name__}.{type(self).__name__}",
            {
                "producer_task_id": self.producer_task_id,
                "node_ids": list(self.node_ids),
                "producer_retries": self.producer_retries,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        ti = self.task_instance
        key = (ti.dag_id, ti.run_id, self.producer_task_id)
        logged: dict[str, int] = {}
        tests = len(self.node_ids) - 1
        self.log.info(
            "Waiting for %s%s in the build (%s)",
            self.node_ids[0],
            f" and its {tests} test(s)" if tests else "",
            self.producer_task_id,
        )
        while True:
            producer_state, snapshot = await _shared_fetch(key, self.poll_interval)
            self._log_new_lines(snapshot, logged)
            verdict = unit_verdict(
                snapshot, self.node_ids, producer_state=producer_state, producer_retries=self.producer_retries
            )
            if verdict.state == "success":
                if verdict.reason:
                    self.log.info("%s", verdict.reason)
                yield TaskSuccessEvent()
                return
            if verdict.state == "failed":
                self.log.error("Failed: %s", verdict.reason)
                self.log.error("The build's log has everything dbt said: task %s", self.producer_task_id)
                yield TaskFailedEvent()
                return
            await asyncio.sleep(self.poll_interval)

    def _log_new_lines(self, snapshot: dict[str, Any] | None, logged: dict[str, int]) -> None:
        nodes = (snapshot or {}).get("nodes") or {}
        for uid in self.node_ids:
            lines = (nodes.get(uid) or {}).get("lines") or []
            for text in lines[logged.get(uid, 0) :]:
                self.log.info("%s", text)
            logged[uid] = len(lines)


#: ``(dag_id, run_id, producer task id)`` -> (when fetched, the fetch): every trigger of the run shares it.
_fetches: dict[tuple[str, str, str], tuple[float, asyncio.Future[tuple[str | None, dict[str, Any] | None]]]] = {}


async def _shared_fetch(key: tuple[str, str, str], max_age: float) -> tuple[str | None, dict[str, Any] | None]:
    """The producer's state and progress, fetched at most once per ``max_age`` seconds for all the run's triggers."""
    loop = asyncio.get_running_loop()
    now = loop.time()
    cached = _fetches.get(key)
    if cached is not None and now - cached[0] < max_age * 0.9:
        return await asyncio.shield(cached[1])
    for stale in [k for k, (at, _) in _fetches.items() if now - at > 300]:
        del _fetches[stale]
    future = asyncio.ensure_future(asyncio.to_thread(_fetch, *key))
    _fetches[key] = (now, future)
    return await asyncio.shield(future)


def _fetch(dag_id: str, run_id: str, task_id: str) -> tuple[str | None, dict[str, Any] | None]:
    """The producer's task state (first: a new try clears its XCom before it runs) and progress XCom."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
    from airflow.sdk.execution_time.xcom import XCom

    states = RuntimeTaskInstance.get_task_states(dag_id=dag_id, task_ids=[task_id], run_ids=[run_id])
    state = (states.get(run_id) or {}).get(task_id)
    snapshot = XCom.get_one(run_id=run_id, key=PROGRESS_XCOM_KEY, task_id=task_id, dag_id=dag_id, map_index=-1)
    return (str(getattr(state, "value", state)) if state is not None else None), snapshot


def unit_task_args(units: Sequence[BuildUnit]) -> list[tuple[str, tuple[str, ...]]]:
    """``(label, node ids)`` of each unit: what :class:`DbtBuildProducer` needs for the test counts."""
    return [(unit.label, unit.node_ids) for unit in units]
