"""The sender in both places it runs, with the Slack connection only in Airflow's metadata database:

- outside a task (the CLI), where the Task SDK alone would not see the database;
- in a task's callbacks under ``airflow dags test`` (the review alert and a task failure).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.slack_server import FakeSlackServer

pytestmark = pytest.mark.integration

PROJECT_DIR = Path(__file__).resolve().parents[4]
BIN = Path(sys.executable).parent

PROBE_DAG = """
from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from wap.slack.callbacks import on_failure, on_review_opened


def _audit():
    from tests.include.wap.slack.reports import audit_xcom

    return audit_xcom()


def _fail():
    raise RuntimeError("publish failed <on purpose> & {{ ds }}")


with DAG(
    dag_id="slack_probe",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["test"],
    default_args={"retries": 0, "on_failure_callback": on_failure()},
):
    audit = PythonOperator(task_id="audit", python_callable=_audit, on_success_callback=on_review_opened())
    audit >> PythonOperator(task_id="publish", python_callable=_fail)
"""


def _run(command: list[str], env: dict[str, str], check: bool = True) -> str:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=PROJECT_DIR)
    output = result.stdout + result.stderr
    if check:
        assert result.returncode == 0, f"{' '.join(command)} failed:\n{output[-6000:]}"
    return output


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as server:
        yield server


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory, slack: FakeSlackServer) -> dict[str, str]:
    """A migrated Airflow home whose metadata database holds ``slack_default`` (posting to the fake)."""
    home = tmp_path_factory.mktemp("airflow-slack")
    dags = home / "dags"
    dags.mkdir()
    (dags / "slack_probe.py").write_text(PROBE_DAG)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW_CONN_", "AIRFLOW__API__"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        PYTHONPATH=os.pathsep.join([str(PROJECT_DIR), env.get("PYTHONPATH", "")]),
        WAP_SLACK_OUTBOX=str(home / "outbox.jsonl"),
    )
    _run([str(BIN / "airflow"), "db", "migrate"], env)
    add = ["connections", "add", "slack_default", "--conn-type", "slackwebhook", "--conn-password", slack.webhook_url]
    _run([str(BIN / "airflow"), *add], env)
    return env


def test_cli_process_finds_the_connection_in_the_metadata_database(
    airflow_env: dict[str, str], slack: FakeSlackServer
) -> None:
    slack.reset()
    script = (
        "import os, sys; from wap.slack import SlackMessage, send; "
        "ok = send(SlackMessage('from the CLI', [{'type': 'divider'}])); "
        "sys.exit(0 if ok and 'AIRFLOW_CONN_SLACK_DEFAULT' not in os.environ else 1)"
    )
    _run([sys.executable, "-c", script], airflow_env)
    assert slack.messages() == [{"text": "from the CLI", "blocks": [{"type": "divider"}]}]
    assert not Path(airflow_env["WAP_SLACK_OUTBOX"]).exists()


def test_task_callbacks_post_the_review_and_the_failure(airflow_env: dict[str, str], slack: FakeSlackServer) -> None:
    slack.reset()
    output = _run([str(BIN / "airflow"), "dags", "test", "slack_probe"], airflow_env, check=False)
    # publish fails on purpose; the callbacks must not change anything else. `airflow dags test` ends with
    # "DagRun Finished: ... state=failed" or, in some runs, only "DagRun failed": either says the run failed.
    assert "state=failed" in output or "DagRun failed" in output, output[-3000:]

    review, failure = slack.messages()
    rid = review["text"].split()[2]
    assert review["text"].startswith(f"WAP review {rid} is open for slack_probe, run manual__")
    assert f'airflow variables set wap_approval__wap_dwh "approve {rid}"' in review["text"]
    assert "http://localhost:8080/wap/reviews/slack_probe/manual__" in review["text"]
    assert review["blocks"][0]["type"] == "header"
    assert failure["text"].startswith("WAP task failed: slack_probe.publish (run manual__")
    assert "RuntimeError: publish failed &lt;on purpose&gt; &amp; {{ ds }}" in failure["text"]
    assert "/tasks/publish?try_number=1" in failure["text"]
