"""The e2e tests' cluster is the bundle's own (``wap.local.cluster``, what `make demo` runs), plus the probe DAG."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wap.local import cluster as _cluster
from wap.local.cluster import (  # noqa: F401  (re-exported for the tests)
    PROJECT_DIR,
    ClusterError,
    default_dag_files,
    duckdb_execute,
    duckdb_scalar,
    example_dag_files,
    schema_fingerprint,
)

E2E_DAGS = Path(__file__).resolve().parent / "dags"
#: The schema of the audit history (``WAP_HISTORY_SCHEMA``'s default): the audit creates it beside the swapped ones.
HISTORY_SCHEMA = "wap_history"


class AirflowCluster(_cluster.AirflowCluster):
    """The bundle's cluster with the review policy off unless ``env`` sets ``WAP_POLICY_FILE``: the demo project
    ships a policy, and these modules test what a reviewer decides (``test_review_policy.py`` turns it on)."""

    def __init__(self, *args: Any, env: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, env={"WAP_POLICY_FILE": "none", **(env or {})}, **kwargs)


def e2e_dag_files() -> list[Path]:
    """The project's DAG files plus the e2e probe DAG(s) of ``tests/e2e/dags``."""
    return default_dag_files() + sorted(E2E_DAGS.glob("*.py"))


BUNDLE_PREFIX = "_wap_"  # the bundle's own relations (marker, publish record)
DEMO_TABLE = "ssb.befolkning_sysselsetting"


def content(cluster: AirflowCluster, schema: str) -> dict:
    """What ``schema`` holds without the bundle's own tables (per table rows and content hash, per view its
    body). Only while no task runs: DuckDB allows one writing process."""
    return schema_fingerprint(cluster.duckdb_path, schema, skip_prefix=BUNDLE_PREFIX)


def revise_landing(cluster: AirflowCluster, delta: int) -> None:
    """A revised 2022 landing load (only while no task runs): the next build differs from production."""
    duckdb_execute(
        cluster.duckdb_path,
        f"update {DEMO_TABLE} set value = value + ? where tid = '2022' and contentscode = ?",
        [delta, "Population by place of residence"],
    )


def leftovers(cluster: AirflowCluster, approval_variable: str) -> dict[str, object]:
    """What a finished series of cycles must not leave: unfinished runs, other schemas or bundle tables than
    expected, other Variables than the approval Variable (and who decided). Empty values mean clean."""
    import duckdb

    with duckdb.connect(str(cluster.duckdb_path), read_only=True) as conn:
        schemas = {
            row[0]
            for row in conn.execute(
                "select schema_name from information_schema.schemata where catalog_name = current_database()"
            ).fetchall()
        }
        bundle_tables = {
            (row[0], row[1])
            for row in conn.execute(
                "select table_schema, table_name from information_schema.tables where table_name like '\\_wap\\_%' "
                "escape '\\'"
            ).fetchall()
        }
    return {
        "unfinished runs": cluster._query(
            "select dag_id, run_id, state from dag_run where state in ('running', 'queued')"
        ),
        "deferred or running tasks": cluster._query(
            "select run_id, task_id, state from task_instance where state in ('deferred', 'running', 'queued', "
            "'scheduled', 'up_for_retry', 'up_for_reschedule')"
        ),
        "stray schemas": sorted(
            schemas - {"information_schema", "pg_catalog", "main", "dwh", "develop_dwh", "ssb", HISTORY_SCHEMA}
        ),
        "stray bundle tables": sorted(
            bundle_tables
            - {
                ("develop_dwh", "_wap_marker"),
                ("dwh", "_wap_marker"),
                ("dwh", "_wap_published"),
                ("develop_dwh", "_wap_published"),
            }
        ),
        "stray Variables": sorted(
            {row[0] for row in cluster._query("select key from variable")}
            - {approval_variable, f"{approval_variable}__by"}
        ),
    }
