"""The end-to-end section of `make bench`: the overhead of WAP on the demo project, in one run.

On a fresh demo warehouse (``wap demo reset``) and Airflow's real components (``wap.local.cluster``, the harness of the
e2e tests and `make demo`; its start-up is not counted, a deployment runs all the time):

1. the WAP cycle of ``wap_dwh``: from the trigger until the review is open (preflight, the dbt build as Cosmos
   tasks, the audit), plus from the approval until the run has finished (the approval task noticing it at its
   2 s poke interval, publish). The human's wait in between is excluded.
2. a plain ``dbt build`` of the same project into the write schema, from the command line, as a team without
   WAP would run it.

Printed: both wall times, the parts of the cycle, and the ratio cycle / plain build.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
DAG_ID = "wap_dwh"


def bench_e2e() -> None:
    from wap.local.cluster import AirflowCluster

    with AirflowCluster(verbose=False) as cluster:
        started = time.monotonic()
        run_id = cluster.trigger(DAG_ID)
        cluster.wait_for_task(DAG_ID, run_id, "await_approval", "deferred", 900)
        opened = time.monotonic()
        review_id = cluster.xcom(DAG_ID, run_id, "audit")["review_id"]
        time.sleep(5)  # a reviewer reads: not counted
        cluster.variable_set("wap_approval__wap_dwh", f"approve {review_id}")
        decided = time.monotonic()
        state = cluster.wait_for_run(DAG_ID, run_id, 600)
        finished = time.monotonic()
        if state != "success":
            raise SystemExit(f"e2e bench: the run ended {state}:\n{cluster.diagnostics()}")
        # The profile the bundle supplies (the project has none), for the cluster's warehouse file.
        profiles = subprocess.run(
            [str(Path(sys.executable).parent / "wap"), "dbt", "profiles"],
            env={**cluster.env},
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        dbt_started = time.monotonic()
        subprocess.run(
            [
                str(Path(sys.executable).parent / "dbt"),
                "--no-use-colors",
                "build",
                "--project-dir",
                str(PROJECT_DIR / "dbt"),
                "--profiles-dir",
                profiles,
                "--target",
                "duckdb",
                "--vars",
                "{wap_write_schema: develop_dwh}",
            ],
            env={**cluster.env},
            cwd=cluster.home,
            check=True,
            capture_output=True,
        )
        plain = time.monotonic() - dbt_started
    build_audit, to_end = opened - started, finished - decided
    cycle = build_audit + to_end
    print(f"e2e    WAP cycle: trigger -> review open       {build_audit:8.1f} s  (dbt as tasks, audit)")
    print(f"e2e    WAP cycle: approval -> run finished     {to_end:8.1f} s  (sensor at a 2 s poke, publish)")
    print(f"e2e    plain `dbt build` of the same project   {plain:8.1f} s")
    print(f"e2e    ratio WAP cycle / plain dbt build      {cycle / plain:8.1f} x  (human wait excluded)")


if __name__ == "__main__":
    bench_e2e()
