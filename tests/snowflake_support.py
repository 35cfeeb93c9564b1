"""The Snowflake path in tests, on fakesnow (``tests/integration``) and on a real account (``tests/live``).

- :func:`load_landing`: the dbt source ``ssb.befolkning_sysselsetting`` in Snowflake SQL, with bound values;
- :func:`dbt_build`: ``dbt build`` through Cosmos' local operator, configured by ``wap.dbt.cosmos`` as the DAG's
  write tasks are (the profile mapped from ``snowflake_default``, the task environment with the query tag, the
  vars, the test-results callback): one ``dbt build`` stands in for the DAG's run and test task per model, which
  differ only in the dbt command;
- :func:`publish_task`: wap_dwh's ``SnowflakePublishOperator``, executed for a run with a given approval.

Operators are executed as the task runner would: templates rendered (Cosmos' ``env`` among them), then
``execute`` with a context holding what they read (:class:`FakeTaskInstance` for XCom).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wap.config import WapConfig

#: The dbt source ``ssb.befolkning_sysselsetting`` (dbt/models/staging/__sources.yml), in a database.
LANDING_SCHEMA, LANDING_TABLE = "ssb", "befolkning_sysselsetting"
LANDING_COLUMNS_SQL = (
    "region varchar not null, kjonn varchar not null, alder varchar not null, contentscode varchar not null, "
    "tid varchar not null, value number(38, 0)"
)
BUILD_TASK = "write.build"
#: 10 regions x 2 sexes x 6 age groups: the rows of one year in the mart and the pivot.
ROWS_A_YEAR = 120
MART, PIVOT, STAGING = "sysselsetting_forholdstall", "int_sysselsetting_pivoted", "stg_ssb__befolkning_sysselsetting"


def load_landing(cursor: Any, database: str, rows: Iterable[Sequence[Any]]) -> int:
    """Create the landing table in ``database`` if needed and load ``rows``, replacing the years they cover.

    Returns the number of rows. The connector sends an ``executemany`` INSERT as one multi-row statement;
    fakesnow transpiles it at about 2 ms a row, so a fakesnow test loads its base data with
    :func:`tests.fakesnow_support.bulk_load_landing` and a year through this.
    """
    from wap.local.landing import COLUMNS

    rows = [tuple(row) for row in rows]
    table = f"{database}.{LANDING_SCHEMA}.{LANDING_TABLE}"
    cursor.execute(f"create schema if not exists {database}.{LANDING_SCHEMA}")
    cursor.execute(f"create table if not exists {table} ({LANDING_COLUMNS_SQL})")
    for year in sorted({row[COLUMNS.index("tid")] for row in rows}):
        cursor.execute(f"delete from {table} where tid = %s", (year,))
    if rows:
        marks = ", ".join("%s" for _ in COLUMNS)
        cursor.executemany(f"insert into {table} ({', '.join(COLUMNS)}) values ({marks})", rows)
    return len(rows)


class FakeTaskInstance:
    """What Cosmos and the bundle's operators use of a task instance here: its ids, XCom push and pull."""

    def __init__(self, task_id: str, run_id: str, pulls: dict[tuple[str, str], Any] | None = None) -> None:
        self.dag_id, self.task_id, self.run_id, self.try_number, self.map_index = "wap_dwh", task_id, run_id, 1, -1
        self.pushed: dict[str, Any] = {}
        self.pulls = pulls or {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.pulls.get((task_ids, key))


class NoEarlierEvents:
    """A task's ``inlet_events`` with no event recorded yet (for the publish task: no try announced)."""

    def __getitem__(self, key: Any) -> NoEarlierEvents:
        return self

    def after(self, since: Any) -> list[Any]:
        return []


def run_task(operator: Any, run_id: str, ti: FakeTaskInstance) -> Any:
    """Render the operator's templates and execute it, as the task runner would."""
    from datetime import datetime, timezone

    from airflow.sdk.execution_time.context import OutletEventAccessors

    context = {
        "dag": operator.dag,
        "task": operator,
        "run_id": run_id,
        "ti": ti,
        "task_instance": ti,
        "dag_run": SimpleNamespace(
            dag_id=operator.dag.dag_id if operator.dag else None,
            run_id=run_id,
            logical_date=None,
            run_after=datetime.now(timezone.utc),
            conf={},
        ),
        "outlet_events": OutletEventAccessors(),
        "inlet_events": NoEarlierEvents(),
    }
    operator.render_template_fields(context)
    return operator.execute(context)


def dbt_build(config: WapConfig, *, run_id: str, write_schema: str | None = None) -> dict[str, int]:
    """``dbt build`` of the project as wap_dwh's write stage configures it; returns the test counts the bundle's
    callback pushed to XCom. ``write_schema`` overrides the schema built into (to seed production directly)."""
    from airflow.sdk import DAG
    from cosmos.operators.local import DbtBuildLocalOperator

    from wap.dbt.cosmos import execution_config, operator_args, profile_config, project_config
    from wap.dbt.project import dbt_vars
    from wap.dbt.results import XCOM_KEY

    project, execution = project_config(config), execution_config(config)
    with DAG(config.dag_id, schedule=None):
        operator = DbtBuildLocalOperator(
            task_id=BUILD_TASK,
            project_dir=str(project.dbt_project_path),
            profile_config=profile_config(config),
            env=project.env_vars,
            vars={**dbt_vars(config), **({"wap_write_schema": write_schema} if write_schema else {})},
            install_deps=project.install_dbt_deps,
            dbt_executable_path=execution.dbt_executable_path,
            invocation_mode=execution.invocation_mode,
            emit_datasets=False,
            **operator_args(config),
        )
    ti = FakeTaskInstance(BUILD_TASK, run_id)
    run_task(operator, run_id, ti)
    return ti.pushed[XCOM_KEY]


def publish_task(run_id: str, decision: dict[str, Any], report: dict[str, Any] | None = None) -> Any:
    """wap_dwh's ``SnowflakePublishOperator`` (configured from the environment, as in the DAG), executed for
    ``run_id`` with ``decision`` as the approval task's XCom and ``report`` as the audit's; returns what it
    returns."""
    from airflow.sdk import DAG

    from wap.approval.protocol import DECISION_XCOM_KEY
    from wap.publish.operator import SnowflakePublishOperator

    with DAG("wap_dwh", schedule=None):
        operator = SnowflakePublishOperator(task_id="publish")
    pulls = {("await_approval", DECISION_XCOM_KEY): decision, ("audit", "return_value"): report}
    ti = FakeTaskInstance("publish", run_id, pulls=pulls)
    return run_task(operator, run_id, ti)


def other_review_id(review_id: str) -> str:
    """A well-formed review id that is not ``review_id``."""
    return "0" * 12 if review_id != "0" * 12 else "1" * 12
