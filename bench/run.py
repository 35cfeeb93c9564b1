"""`make bench`: the bundle's performance figures, each a ratio measured in this one run.

Sections:
- parse: how long the DAG processor takes to parse dags/wap_dwh.py, against a one-task DAG file, each in a
  fresh process with Airflow already imported (as the dag processor parses files).
- scale (``bench/generated.py``): a generated project of 300 models: its DAG's parse time against the demo's, and
  the audit of 300 unchanged relations (time, warehouse statements).
- diff, changes, publish, e2e: ``bench/diff.py``, ``bench/changes.py`` (the keyed report of a daily load, scattered
  corrections, the worst case and no change, in two storage orders), ``bench/publish.py``, ``bench/e2e.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
REPEATS = 5

BASELINE_DAG = textwrap.dedent(
    """
    from datetime import datetime
    from airflow.sdk import DAG
    from airflow.providers.standard.operators.empty import EmptyOperator

    with DAG(dag_id="baseline", schedule=None, start_date=datetime(2024, 1, 1), tags=["bench"]):
        EmptyOperator(task_id="noop")
    """
)

_PARSE_ONCE = textwrap.dedent(
    """
    import json, sys, time
    from airflow.dag_processing.dagbag import DagBag
    if sys.argv[2] == "warm":
        # What a long-lived dag processor has already paid: Airflow's plugins (Cosmos' among them, which
        # imports FastAPI), loaded on the first use of ObjectStoragePath, through which Cosmos reads the manifest.
        from airflow.sdk.lineage import get_hook_lineage_collector
        get_hook_lineage_collector()
    started = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1])
    elapsed = time.perf_counter() - started
    assert not bag.import_errors, bag.import_errors
    print(json.dumps({"seconds": elapsed, "tasks": sum(len(d.tasks) for d in bag.dags.values())}))
    """
)


def parse_seconds(dag_file: Path, mode: str = "cold") -> tuple[float, int]:
    """Median wall time of parsing ``dag_file`` in a fresh process, and its task count.

    ``cold``: only Airflow imported; ``warm``: Airflow's plugins loaded too.
    """
    timings, tasks = [], 0
    for _ in range(REPEATS):
        out = subprocess.run(
            [sys.executable, "-c", _PARSE_ONCE, str(dag_file), mode], capture_output=True, text=True, check=True
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        timings.append(result["seconds"])
        tasks = result["tasks"]
    return statistics.median(timings), tasks


def bench_parse() -> None:
    with tempfile.TemporaryDirectory() as folder:
        baseline_file = Path(folder) / "baseline.py"
        baseline_file.write_text(BASELINE_DAG)
        baseline, _ = parse_seconds(baseline_file)
    dag_file = PROJECT_DIR / "dags" / "wap_dwh.py"
    cold, tasks = parse_seconds(dag_file, "cold")
    warm, _ = parse_seconds(dag_file, "warm")
    print(f"parse  baseline one-task DAG                  {baseline * 1000:8.1f} ms  (median of {REPEATS})")
    print(f"parse  dags/wap_dwh.py ({tasks:2d} tasks), cold       {cold * 1000:8.1f} ms  (plugins not yet loaded)")
    print(f"parse  dags/wap_dwh.py ({tasks:2d} tasks), warm       {warm * 1000:8.1f} ms  (plugins loaded)")
    print(f"parse  ratio wap_dwh / baseline, cold / warm  {cold / baseline:8.1f} x / {warm / baseline:.1f} x")


@contextlib.contextmanager
def environment(overrides: Mapping[str, str]) -> Iterator[None]:
    """``overrides`` set in this process's environment for the block, then restored (what the bench's in-process
    steps read through ``load_config``)."""
    before = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main() -> None:
    print("== WAP bench ==")
    bench_parse()
    from changes import bench_changes  # bench/changes.py, beside this script
    from diff import bench_diff  # bench/diff.py
    from e2e import bench_e2e  # bench/e2e.py
    from generated import bench_generated  # bench/generated.py
    from publish import bench_publish  # bench/publish.py

    bench_generated()
    bench_diff()
    bench_changes()
    bench_publish()
    bench_e2e()


if __name__ == "__main__":
    main()
