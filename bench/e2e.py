"""The end-to-end section of `make bench`: a WAP cycle against a plain ``dbt build`` of the same project, in one run.

For each project (the demo project on a fresh demo warehouse; the generated 300-model project of
``bench/generated.py`` on an empty one) and each write mode (``one_build``, the default, and ``per_model``), on
Airflow's real components (``wap.local.cluster``; their start-up is not counted, a deployment runs all the time):

1. WAP cycles of ``wap_dwh`` through ``wap.local.cycle.run_cycle`` (what `wap cycle` runs): from the trigger until
   the review is open (the audit has set the approval Variable to ``pending`` and sent the alert: a reviewer can
   decide), plus from the approval until the run has finished (the approval task noticing it at its 2 s poke
   interval, publish). The human's wait in between is excluded. The first cycle after the components start pays
   their first task processes' imports; the figure compared is the second (a deployment's steady state). Per-model
   mode on the generated project (a dbt process per model and test, one at a time: about an hour a cycle here)
   runs only with ``WAP_BENCH_PER_MODEL_300=1``, once.
2. a plain ``dbt build`` of the same project into the write schema, from the command line, with the profile the
   bundle supplies, as a team without WAP would run it (twice: the second, with dbt's partial parsing, counts).

Printed per project and mode: both wall times, the parts of the cycle, and the ratio cycle / plain build.
``WAP_BENCH_E2E=demo`` (or ``generated``) limits the projects; ``WAP_BENCH_MODES=one_build`` the modes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CYCLES = 2


def plain_build_seconds(env: dict[str, str], project_dir: Path, cwd: Path) -> float:
    """A plain ``dbt build`` of ``project_dir`` with the bundle's profile for ``env``'s warehouse (the second of
    two runs: partial parsing on, as for a team's daily build)."""
    from wap.config import load_config
    from wap.dbt.project import dbt_vars, read_project

    config = load_config(env)
    profiles = (
        subprocess.run([str(BIN / "wap"), "dbt", "profiles"], env=env, check=True, capture_output=True, text=True)
        .stdout.strip()
        .splitlines()[-1]
    )  # the last line: the directory (a warning may precede it)
    command = [
        str(BIN / "dbt"),
        "--no-use-colors",
        "build",
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        profiles,
        "--profile",
        read_project(project_dir).profile,
        "--target",
        "duckdb",
        "--vars",
        json.dumps(dbt_vars(config)),
    ]
    seconds = 0.0
    for _ in range(2):
        started = time.monotonic()
        subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True)
        seconds = time.monotonic() - started
    return seconds


def timeline(cluster: object, dag_id: str, run_id: str) -> str:
    """Where a cycle's seconds went: each task's start and end, from the run's start (the units of the one-build
    group counted together: their first start, their last end)."""
    from datetime import datetime

    def at(value: str | None) -> float | None:
        return datetime.fromisoformat(value).timestamp() if value else None

    (run_start,) = cluster._query_one(  # type: ignore[attr-defined]
        "select coalesce(queued_at, start_date) from dag_run where dag_id = ? and run_id = ?", (dag_id, run_id)
    )
    origin = at(run_start) or 0.0
    rows = cluster._query(  # type: ignore[attr-defined]
        "select task_id, start_date, end_date from task_instance where dag_id = ? and run_id = ? order by start_date",
        (dag_id, run_id),
    )
    spans: dict[str, list[float]] = {}
    for task_id, start, end in rows:
        name = task_id if task_id in ("write.build",) or not task_id.startswith("write.") else "write.<units>"
        begin, finish = at(start), at(end)
        if begin is None or finish is None:
            continue
        span = spans.setdefault(name, [begin, finish])
        span[0], span[1] = min(span[0], begin), max(span[1], finish)
    return ", ".join(
        f"{name} {begin - origin:.1f}-{finish - origin:.1f}"
        for name, (begin, finish) in sorted(spans.items(), key=lambda item: item[1][0])
    )


def measure(
    label: str, project_dir: Path, mode: str, *, demo: bool, cycles: int = CYCLES, build_timeout: float = 600
) -> None:
    """Cycles of ``project_dir`` in ``mode`` on a cluster of their own, then the plain build; prints the figures."""
    import duckdb
    from run import environment  # bench/run.py

    from wap.config import load_config
    from wap.local.cluster import AirflowCluster
    from wap.local.cycle import run_cycle

    extra = {"WAP_DBT_PROJECT_DIR": str(project_dir), "WAP_WRITE_MODE": mode}
    cluster = AirflowCluster(verbose=False, demo_reset=demo, env=extra)
    env = dict(cluster.env)
    subprocess.run([str(BIN / "wap"), "dbt", "prepare"], env=env, check=True, capture_output=True)
    if not demo:
        duckdb.connect(str(cluster.duckdb_path)).close()  # an empty production: the first publish creates it
    config = load_config(env)
    results = []
    with environment({name: value for name, value in env.items() if name.startswith("WAP_")}):
        with cluster, open(os.devnull, "w") as quiet:
            for _ in range(cycles):
                stdout, sys.stdout = sys.stdout, quiet
                try:
                    result = run_cycle(config, cluster, decision="approve", build_timeout=build_timeout)
                finally:
                    sys.stdout = stdout
                if result.outcome != "published":
                    raise SystemExit(
                        f"e2e bench: {label} {mode}: the cycle ended {result.outcome}:\n{cluster.diagnostics()}"
                    )
                results.append(result)
                print(f"e2e    {label:9s} {mode:9s} cycle {len(results)}: {result.seconds}", flush=True)
                print(f"         tasks (s from the trigger): {timeline(cluster, config.dag_id, result.run_id)}")
            plain = plain_build_seconds(env, project_dir, cluster.home)
    first, steady = results[0].seconds, results[-1].seconds
    to_review, to_end = steady["trigger_to_review"], steady["decision_to_end"]
    cycle = to_review + to_end
    name = f"e2e    {label:9s} {mode:9s}"
    print(
        f"{name} cycle: trigger -> review open     {to_review:7.1f} s  (first cycle {first['trigger_to_review']:.1f} s)"
    )
    print(f"{name} cycle: approval -> run finished   {to_end:7.1f} s  (first cycle {first['decision_to_end']:.1f} s)")
    print(f"{name} plain `dbt build`                 {plain:7.1f} s")
    print(f"{name} ratio cycle / plain dbt build     {cycle / plain:7.1f} x  (human wait excluded)")


def bench_e2e() -> None:
    from generated import generate_project  # bench/generated.py

    projects = os.environ.get("WAP_BENCH_E2E", "demo,generated").split(",")
    modes = os.environ.get("WAP_BENCH_MODES", "one_build,per_model").split(",")
    slow = os.environ.get("WAP_BENCH_PER_MODEL_300") == "1"
    with tempfile.TemporaryDirectory(prefix="wap-bench-e2e-") as folder:
        for label in projects:
            project_dir = PROJECT_DIR / "dbt" if label == "demo" else generate_project(Path(folder))
            for mode in modes:
                if (label, mode) == ("generated", "per_model"):
                    if not slow:
                        print("e2e    generated per_model: skipped (about an hour; WAP_BENCH_PER_MODEL_300=1 runs it)")
                        continue
                    measure(label, project_dir, mode, demo=False, cycles=1, build_timeout=4 * 3600)
                    continue
                measure(label, project_dir, mode, demo=label == "demo")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    bench_e2e()
