"""Test-wide environment: a throw-away AIRFLOW_HOME and warehouse, set before Airflow is imported."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]

_home = Path(tempfile.mkdtemp(prefix="wap-tests-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_home)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(PROJECT_DIR / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PROJECT_DIR / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] = "False"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "False"
os.environ["WAP_DUCKDB_PATH"] = str(_home / "unit-warehouse.duckdb")
for _name in [name for name in os.environ if name.startswith("WAP_") and name != "WAP_DUCKDB_PATH"]:
    del os.environ[_name]

# fakesnow's server and the Snowflake connection fixtures (see tests/fakesnow_support.py).
pytest_plugins = ["tests.fakesnow_support"]

# Slack: the fake Slack server fixture `slack_server` (tests/fakes/slack_server.py), and an outbox under the
# throw-away AIRFLOW_HOME so no test writes into the project's .wap/.
os.environ["WAP_SLACK_OUTBOX"] = str(_home / "slack-outbox.jsonl")
from tests.fakes.slack_server import slack_server  # noqa: E402, F401  (a pytest fixture)
