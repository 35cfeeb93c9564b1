"""End-to-end fixtures: one Airflow cluster (all four real components) per module that asks for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import AirflowCluster, e2e_dag_files


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowCluster]:
    """The scheduler, triggerer, dag processor and API server on a fresh home and demo warehouse."""
    with AirflowCluster(home=tmp_path_factory.mktemp("airflow-e2e"), dag_files=e2e_dag_files()) as running:
        yield running
