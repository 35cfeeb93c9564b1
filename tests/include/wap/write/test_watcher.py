"""The one build's task and its unit tasks, without Airflow's components: the trigger, the shared poll, the producer."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.triggers.base import TaskFailedEvent, TaskSuccessEvent
from cosmos.operators.local import DbtBuildLocalOperator

from wap.write import watcher
from wap.write.watcher import BuildProgressTrigger, DbtBuildProducer, DbtUnitWatcher

from .test_progress import FAILED, GOOD, MODEL, UNIT, record, snapshot


def run_trigger(trigger: BuildProgressTrigger) -> list[Any]:
    async def collect() -> list[Any]:
        return [event async for event in trigger.run()]

    return asyncio.run(collect())


def task_instance(run_id: str) -> SimpleNamespace:
    return SimpleNamespace(dag_id="wap_dwh", run_id=run_id, task_id="write.orders_run", map_index=-1, try_number=1)


def make_trigger(**kwargs: Any) -> BuildProgressTrigger:
    trigger = BuildProgressTrigger(producer_task_id="write.build", node_ids=UNIT, poll_interval=0.01, **kwargs)
    trigger.task_instance = task_instance(f"run-{id(trigger)}")  # type: ignore[assignment]
    return trigger


class Polls(list):
    """What the producer shows, poll after poll (the last one repeats); ``fetched``: every fetch made."""

    fetched: list[tuple]


@pytest.fixture
def polls(monkeypatch: pytest.MonkeyPatch) -> Polls:
    answers = Polls()
    answers.fetched = fetched = []

    def fetch(dag_id: str, run_id: str, task_id: str) -> tuple[str | None, dict | None]:
        fetched.append((dag_id, run_id, task_id))
        return answers.pop(0) if len(answers) > 1 else answers[0]

    monkeypatch.setattr(watcher, "_fetch", fetch)
    monkeypatch.setattr(watcher, "_fetches", {})
    return answers


def test_the_unit_ends_in_success_from_the_triggerer_and_logs_its_dbt_lines(
    polls: Polls, capsys: pytest.CaptureFixture[str]
) -> None:
    polls += [(None, None), ("running", snapshot(*GOOD[:3])), ("running", snapshot(*GOOD))]
    events = run_trigger(make_trigger(producer_retries=1))
    assert len(events) == 1 and isinstance(events[0], TaskSuccessEvent)
    logged = "".join(capsys.readouterr())  # the trigger's log (structlog's, as in the triggerer)
    assert "1 of 3 OK created sql table model develop_dwh.orders" in logged
    assert logged.count("1 of 3 START sql table model develop_dwh.orders") == 1, "each line once, however many polls"
    assert "1 test(s) warned" in logged


def test_the_unit_fails_with_the_reason_once_the_build_will_not_retry(
    polls: Polls, capsys: pytest.CaptureFixture[str]
) -> None:
    polls += [("running", snapshot(*FAILED, try_number=1)), ("up_for_retry", snapshot(*FAILED, try_number=1))]
    polls += [("running", snapshot(try_number=2)), ("running", snapshot(*FAILED, try_number=2))]
    events = run_trigger(make_trigger(producer_retries=1))
    assert len(events) == 1 and isinstance(events[0], TaskFailedEvent)
    assert "Failed: test unique_orders_id: fail" in "".join(capsys.readouterr())
    assert len(polls.fetched) == 4, "it waited through the first try and its retry"


def test_every_trigger_of_a_run_shares_one_fetch_per_interval(polls: Polls) -> None:
    polls += [("running", snapshot(*GOOD))]

    async def many() -> None:
        triggers = []
        for _ in range(50):
            trigger = BuildProgressTrigger(producer_task_id="write.build", node_ids=UNIT, poll_interval=5)
            trigger.task_instance = task_instance("one-run")  # type: ignore[assignment]
            triggers.append(trigger)
        results = await asyncio.gather(*[anext(trigger.run()) for trigger in triggers])
        assert all(isinstance(event, TaskSuccessEvent) for event in results)

    asyncio.run(many())
    assert len(polls.fetched) == 1


def test_the_trigger_serializes_to_what_the_unit_starts_it_with() -> None:
    unit = DbtUnitWatcher(task_id="orders_run", producer_task_id="write.build", node_ids=UNIT, producer_retries=1)
    classpath, kwargs = BuildProgressTrigger(**unit.start_trigger_args.trigger_kwargs).serialize()
    assert classpath == unit.start_trigger_args.trigger_cls == "wap.write.watcher.BuildProgressTrigger"
    assert kwargs == unit.start_trigger_args.trigger_kwargs
    assert unit.start_from_trigger and unit.retries == 0
    with pytest.raises(AirflowException, match="the node failed"):
        unit.execute_complete({}, {"state": "failed", "reason": "the node failed"})


class FakeTI:
    def __init__(self) -> None:
        self.try_number = 1
        self.pushed: list[tuple[str, Any]] = []

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed.append((key, json.loads(json.dumps(value))))


def producer(units: list | None = None) -> DbtBuildProducer:
    from cosmos.config import ProfileConfig

    return DbtBuildProducer(
        task_id="build",
        project_dir="/nonexistent",
        profile_config=ProfileConfig(profile_name="p", target_name="t", profiles_yml_filepath="/nonexistent/p.yml"),
        install_deps=False,
        units=units or [("orders", UNIT)],
    )


def run_producer(monkeypatch: pytest.MonkeyPatch, lines: list[str], error: Exception | None = None) -> FakeTI:
    """The producer's execute with the reset and dbt replaced: dbt 'prints' ``lines``, then fails with ``error``."""
    import wap.write.reset as reset

    nothing = {"dropped": [], "carried": [], "new": [], "full_refresh": False}
    monkeypatch.setattr(reset, "reset_for_run", lambda config, conf: nothing)

    def fake_dbt(self: DbtBuildProducer, context: Any, **kwargs: Any) -> None:
        for line in lines:
            self._process_log_line_callable(line, {})  # type: ignore[misc]
        if error is not None:
            raise error

    monkeypatch.setattr(DbtBuildLocalOperator, "execute", fake_dbt)
    ti = FakeTI()
    task = producer()
    task.execute({"ti": ti, "dag_run": SimpleNamespace(conf={})})
    return ti


def test_the_producer_publishes_progress_and_the_reports_test_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    ti = run_producer(monkeypatch, GOOD)
    keys = [key for key, _ in ti.pushed]
    assert keys[0] == "wap_reset" and keys[-1] == "wap_dbt_test_rows"
    final = [value for key, value in ti.pushed if key == "wap_build_progress"][-1]
    assert final["done"] and final["nodes"][MODEL]["status"] == "success"
    assert ti.pushed[-1][1] == [{"model": "orders", "passed": 1, "failed": 0, "warned": 1}]


def test_a_failed_test_fails_the_build_without_a_retry_naming_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AirflowFailException, match=r"dbt build failed: test unique_orders_id of orders \(fail\)"):
        run_producer(monkeypatch, FAILED, error=RuntimeError("dbt exited 1"))


def test_a_model_error_fails_the_build_for_a_retry_naming_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [GOOD[1], record("LogModelResult", "1 of 3 ERROR creating model", MODEL, "error", "error")]
    with pytest.raises(AirflowException, match=r"model orders \(error\)") as raised:
        run_producer(monkeypatch, lines, error=RuntimeError("dbt exited 1"))
    assert not isinstance(raised.value, AirflowFailException)


def test_a_failure_dbt_did_not_attribute_is_raised_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError, match="no profile"):
        run_producer(monkeypatch, [], error=RuntimeError("no profile"))


def test_a_bad_full_refresh_conf_fails_before_dbt(monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[bool] = []
    monkeypatch.setattr(DbtBuildLocalOperator, "execute", lambda self, context, **kw: called.append(True))
    with pytest.raises(AirflowFailException, match="full_refresh"):
        producer().execute({"ti": FakeTI(), "dag_run": SimpleNamespace(conf={"full_refresh": "yes"})})
    assert not called
