"""The e2e tests' cluster is the bundle's own (``wap.cluster``, also what `make demo` runs), plus the probe DAG."""

from __future__ import annotations

from pathlib import Path

from wap.cluster import (  # noqa: F401  (re-exported for the tests)
    PROJECT_DIR,
    AirflowCluster,
    ClusterError,
    default_dag_files,
    duckdb_execute,
    duckdb_scalar,
    schema_fingerprint,
)

E2E_DAGS = Path(__file__).resolve().parent / "dags"


def e2e_dag_files() -> list[Path]:
    """The project's DAG files plus the e2e probe DAG(s) of ``tests/e2e/dags``."""
    return default_dag_files() + sorted(E2E_DAGS.glob("*.py"))
