"""A dbt project that is not the demo (tests/dbt_projects/shop, copied) goes through repeated WAP cycles with
`wap cycle` on the real Airflow components, as a team adopting the bundle would run it:

1. approve, on an empty warehouse (the file is created): production is created;
2. approve, after a new load and with a model dropped from the project: the model is reported removed and
   leaves production;
3. reject, after the next load, with conf ``{"full_refresh": true}``: production stays as it was, the write schema
   holds the incremental model rebuilt from the newest batch only, and the snapshot's history;
4. a load that fails a test: the cycle exits non-zero, nothing is audited or published;
5. the same load as 3 again, with ``--decision none``: a reviewer approves from another shell (`wap approve`),
   and the cycle, which started from production (not from the rejected or failed builds), publishes.

After each approved cycle production equals a plain `dbt build` of the same project run after every load (the
incremental model holds every batch, the snapshot its whole history), and its views read production.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import PROJECT_DIR
from tests.shop_support import BAD_BATCH, BATCHES, RELATIONS, copy_shop, load_batch
from tests.shop_support import relation_rows as rows_of
from wap.config import load_config
from wap.dbt.prepare import run_dbt
from wap.dbt.profiles import write_profiles
from wap.dbt.project import prepared_dir, read_project

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
DROPPED = "stg_large_orders"


def relation_rows(path: Path, schema: str) -> dict[str, list[tuple]]:
    """Every relation of ``schema`` (but the bundle's own) and its rows, without dbt's snapshot timestamps."""
    with duckdb.connect(str(path), read_only=True) as conn:
        names = conn.execute(
            "select table_name from information_schema.tables where table_schema = ? order by 1", [schema]
        ).fetchall()
    return {name: rows_of(path, schema, name) for (name,) in names if not name.startswith("_wap_")}


def snapshot_history(path: Path, schema: str) -> list[tuple]:
    """The snapshot's versions: (customer, status, current?)."""
    with duckdb.connect(str(path), read_only=True) as conn:
        return sorted(
            conn.execute(
                f'select customer_id, status, dbt_valid_to is null from "{schema}".customer_status_history'
            ).fetchall()
        )


def view_sql(path: Path, schema: str) -> dict[str, str]:
    with duckdb.connect(str(path), read_only=True) as conn:
        sql = "select view_name, sql from duckdb_views() where schema_name = ? and not internal"
        return dict(conn.execute(sql, [schema]).fetchall())


class Adopter:
    """A team's project copy, its warehouse and Airflow home, and a plain dbt build of the same project beside it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.project = copy_shop(folder / "team")
        self.warehouse = folder / "warehouse.duckdb"
        self.home = folder / "airflow"
        self.plain_project = copy_shop(folder / "plain")
        self.plain_warehouse = folder / "plain_build.duckdb"  # not "plain": the catalog would shadow the schema
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WAP_"))},
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "AIRFLOW_HOME": str(self.home),
            "WAP_DBT_PROJECT_DIR": str(self.project),
            "WAP_DUCKDB_PATH": str(self.warehouse),
            "WAP_SLACK_OUTBOX": str(folder / "outbox.jsonl"),
            "WAP_APPROVAL_POKE_INTERVAL": "1s",
        }
        self.cycles: list[dict[str, Any]] = []
        self.approval: subprocess.CompletedProcess | None = None

    def load(self, batch: int, data: dict | None = None) -> None:
        """A new load of the landing tables, for the bundle's warehouse (once it exists) and the plain one."""
        for path in (self.warehouse, self.plain_warehouse):
            if path == self.warehouse and not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
            load_batch(path, batch, data)

    def cycle(self, decision: str, *, conf: dict | None = None, approver: bool = False) -> dict[str, Any]:
        """`wap cycle --decision <decision> --json`; with ``approver``, someone else approves from another shell
        (`wap approve <id>`, with the same AIRFLOW_HOME) once the review's alert reaches the outbox."""
        command = [str(BIN / "wap"), "cycle", "--decision", decision, "--json"]
        if conf is not None:
            command += ["--conf", json.dumps(conf)]
        outbox = self.folder / "outbox.jsonl"
        seen = len(outbox.read_text().splitlines()) if outbox.exists() else 0
        process = subprocess.Popen(
            command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=PROJECT_DIR
        )
        if approver:
            self.approval = self._approve_when_open(process, outbox, seen)
        stdout, stderr = process.communicate(timeout=1200)
        outcome = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else {}
        cycle = {"returncode": process.returncode, "stdout": stdout, "stderr": stderr, **outcome}
        (self.folder / f"cycle-{len(self.cycles) + 1}.txt").write_text(stdout + "\n" + stderr)
        self.cycles.append(cycle)
        assert outcome, f"wap cycle printed no JSON (exit {process.returncode}):\n{stdout[-3000:]}\n{stderr[-3000:]}"
        return cycle

    def _approve_when_open(self, process: subprocess.Popen, outbox: Path, seen: int) -> subprocess.CompletedProcess:
        import re
        import time

        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and process.poll() is None:
            lines = outbox.read_text().splitlines()[seen:] if outbox.exists() else []
            opened = [re.search(r"WAP review ([0-9a-f]{12}) is open", line) for line in lines]
            review_ids = [match[1] for match in opened if match]
            if review_ids:
                command = [str(BIN / "wap"), "approve", review_ids[0]]
                approval = subprocess.run(command, env=self.env, capture_output=True, text=True, check=False)
                if approval.returncode == 0:
                    return approval
            time.sleep(1)
        raise AssertionError("the review never opened for the reviewer in another shell")

    def plain_build(self) -> None:
        """`dbt build` of the project as it is (no bundle macros), into the plain warehouse's schema ``plain``."""
        config = load_config(
            {"WAP_DUCKDB_PATH": str(self.plain_warehouse), "WAP_DBT_PROJECT_DIR": str(self.plain_project)}
        )
        project = read_project(self.plain_project)
        profiles = write_profiles(config, project, self.folder / "plain-profiles", schema="plain").parent
        if not (self.plain_project / "dbt_packages").exists():
            run_dbt(config, project, "deps", profiles=profiles)
        run_dbt(config, project, "build", profiles=profiles)

    def drop_model(self, name: str) -> None:
        for project in (self.project, self.plain_project):
            (project / "models" / "staging" / f"{name}.sql").unlink()
            models = project / "models" / "staging" / "stg_models.yml"
            text = models.read_text()
            models.write_text(text[: text.index(f"  - name: {name}")])
        with duckdb.connect(str(self.plain_warehouse)) as conn:  # what one uninterrupted project holds
            conn.execute(f"drop view plain.{name}")


@pytest.fixture(scope="module")
def adopter(tmp_path_factory: pytest.TempPathFactory) -> Any:
    team = Adopter(tmp_path_factory.mktemp("own-project-cycles"))
    snapshots: dict[str, Any] = {}

    team.load(1)
    team.plain_build()
    team.cycle("approve")
    snapshots[1] = relation_rows(team.warehouse, "dwh")

    team.load(2)
    team.drop_model(DROPPED)
    team.plain_build()
    team.cycle("approve")
    snapshots[2] = relation_rows(team.warehouse, "dwh")
    snapshots["history 2"] = snapshot_history(team.warehouse, "dwh")

    team.load(3)
    team.cycle("reject", conf={"full_refresh": True})
    snapshots["write after 3"] = relation_rows(team.warehouse, "develop_dwh")
    snapshots["write history after 3"] = snapshot_history(team.warehouse, "develop_dwh")
    snapshots[3] = relation_rows(team.warehouse, "dwh")

    team.load(4, BAD_BATCH)
    team.cycle("approve")
    snapshots[4] = relation_rows(team.warehouse, "dwh")

    team.load(3)
    team.plain_build()
    team.cycle("none", approver=True)  # someone else decides: `wap approve <id>` from another shell
    snapshots[5] = relation_rows(team.warehouse, "dwh")
    team.snapshots = snapshots
    yield team
    shutil.rmtree(prepared_dir(load_config({"WAP_DBT_PROJECT_DIR": str(team.project)})), ignore_errors=True)


def _report(adopter: Adopter, cycle: dict[str, Any]) -> dict[str, str]:
    """The relation statuses of a cycle's report: the audit task's XCom in the Airflow home's database."""
    import sqlite3

    with sqlite3.connect(adopter.home / "airflow.db") as conn:
        (value,) = conn.execute(
            "select value from xcom where dag_id = 'wap_dwh' and run_id = ? and task_id = 'audit' "
            "and key = 'return_value'",
            [cycle["run_id"]],
        ).fetchone()
    report = json.loads(value)
    assert report["review_id"] == cycle["review_id"]
    return {entry["name"]: entry["status"] for entry in report["relations"]}


def test_the_first_cycle_creates_production_from_an_empty_warehouse(adopter: Adopter) -> None:
    first = adopter.cycles[0]
    assert first["returncode"] == 0 and first["outcome"] == "published", first["stderr"][-2000:]
    assert set(_report(adopter, first).values()) == {"added"} and set(_report(adopter, first)) == set(RELATIONS)
    assert set(first["seconds"]) == {"trigger_to_review", "decision_to_end"}
    assert all(value > 0 for value in first["seconds"].values())
    assert set(adopter.snapshots[1]) == set(RELATIONS)


def test_approved_cycles_equal_a_plain_dbt_build_and_their_views_read_production(adopter: Adopter) -> None:
    plain = relation_rows(adopter.plain_warehouse, "plain")
    final = adopter.snapshots[5]
    assert set(final) == set(RELATIONS) - {DROPPED}
    for name in final:
        assert final[name] == plain[name], name
    views = view_sql(adopter.warehouse, "dwh")
    assert set(views) == {"stg_customers", "stg_orders"}
    assert all("develop_dwh" not in sql.split(" AS ", 1)[1].lower() for sql in views.values()), views


def test_the_incremental_model_holds_every_batch_and_the_snapshot_its_whole_history(adopter: Adopter) -> None:
    every_order = sorted(order[0] for batch in (1, 2, 3) for order in BATCHES[batch]["orders"])
    assert sorted(row[0] for row in adopter.snapshots[5]["orders_history"]) == every_order
    assert adopter.snapshots["history 2"] == [(1, "gold", True), (1, "new", False), (2, "new", True), (3, "new", True)]
    assert snapshot_history(adopter.warehouse, "dwh") == [
        (1, "gold", True),
        (1, "new", False),
        (2, "new", False),
        (2, "silver", True),
        (3, "lapsed", True),
        (3, "new", False),
    ]


def test_a_model_dropped_from_the_project_is_reported_removed_and_leaves_production(adopter: Adopter) -> None:
    second = adopter.cycles[1]
    assert second["returncode"] == 0 and second["outcome"] == "published"
    statuses = _report(adopter, second)
    assert statuses[DROPPED] == "removed"
    assert statuses["orders_history"] == "changed" and statuses["customer_status_history"] == "changed"
    assert DROPPED not in adopter.snapshots[2]


def test_a_rejected_full_refresh_publishes_nothing_and_rebuilt_only_the_incremental_model(adopter: Adopter) -> None:
    third = adopter.cycles[2]
    assert third["returncode"] == 0 and third["outcome"] == "rejected", third["stderr"][-2000:]
    assert adopter.snapshots[3] == adopter.snapshots[2], "production is untouched"
    rebuilt = adopter.snapshots["write after 3"]["orders_history"]
    assert sorted(row[0] for row in rebuilt) == [order[0] for order in BATCHES[3]["orders"]]
    assert len(adopter.snapshots["write history after 3"]) == 6, "the snapshot kept its history and added to it"


def test_a_cycle_whose_build_fails_a_test_exits_non_zero_and_publishes_nothing(adopter: Adopter) -> None:
    fourth = adopter.cycles[3]
    assert fourth["returncode"] == 1 and fourth["outcome"] == "build failed" and fourth["review_id"] is None
    assert {"write.build", "write.orders_history_run"} <= set(fourth["failed_tasks"])
    assert "unique_orders_history_order_id" in fourth["stdout"]  # why, from the dbt task's log
    assert "the cycle ended 'build failed'" in fourth["stderr"]
    assert adopter.snapshots[4] == adopter.snapshots[2], "production is untouched"


def test_the_next_cycle_starts_again_from_production_and_someone_else_can_decide(adopter: Adopter) -> None:
    fifth = adopter.cycles[4]
    assert adopter.approval is not None and adopter.approval.returncode == 0
    assert f"approve {fifth['review_id']}" in adopter.approval.stdout
    assert fifth["returncode"] == 0 and fifth["outcome"] == "published" and fifth["decision"] == "none"
    assert "Waiting for a reviewer" in fifth["stdout"]
    statuses = _report(adopter, fifth)
    assert statuses["orders_history"] == "changed"
    assert statuses["customer_orders"] == "unchanged" and statuses["raw_orders"] == "unchanged"
