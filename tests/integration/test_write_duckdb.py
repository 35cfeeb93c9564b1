"""Run `make demo`'s cycle (`wap cycle`: wap_dwh on the real Airflow components) on a
temporary Airflow home and embedded warehouse; check what it printed, wrote and audited.

The expected rows are computed here in Python from the landing generator, independently of the dbt SQL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from wap.local.landing import EMPLOYED_RESIDENCE, EMPLOYED_WORKPLACE, POPULATION, generate_rows

from ..conftest import PROJECT_DIR

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
COLUMNS = (
    "region, kjonn, alder, tid, periode_start, sysselsatte_bosted, befolkning, sysselsatte_arbeidssted, "
    "sysselsettingsandel, sysselsettingsbalanse, endring_sysselsettingsandel"
)


def _run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=PROJECT_DIR)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    return result.stdout


def _cycle(home: Path, decision: str) -> Path:
    """A fresh Airflow home and demo warehouse in ``home``; wap_dwh runs once and the reviewer decides."""
    path = home / "warehouse.duckdb"
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "AIRFLOW_HOME": str(home),
        "WAP_DUCKDB_PATH": str(path),
        "WAP_SLACK_OUTBOX": str(home / "outbox.jsonl"),
        "WAP_APPROVAL_POKE_INTERVAL": "1s",
    }
    _run([str(BIN / "airflow"), "db", "migrate"], env)
    _run([str(BIN / "wap"), "settings", "apply"], env)
    _run([str(BIN / "wap"), "demo", "reset"], env)
    command = [str(BIN / "wap"), "cycle", "--decision", decision, "--json"]
    (home / "cycle.txt").write_text(_run(command, env))  # exits 0 only if the decision was carried out
    return path


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """wap_dwh has run once on the demo data and the reviewer rejected it: nothing is published."""
    return _cycle(tmp_path_factory.mktemp("airflow"), "reject")


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """wap_dwh has run once on the demo data and the reviewer approved it, like `make demo` does."""
    return _cycle(tmp_path_factory.mktemp("airflow"), "approve")


def _wap(warehouse: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AIRFLOW_HOME": str(warehouse.parent), "WAP_DUCKDB_PATH": str(warehouse)}
    return subprocess.run([str(BIN / "wap"), *args], env=env, capture_output=True, text=True, check=False)


def test_the_review_was_announced_and_rejected_and_nothing_published(warehouse: Path) -> None:
    cycle = (warehouse.parent / "cycle.txt").read_text()
    rid = re.search(r"Review ([0-9a-f]{12}) is open", cycle)[1]
    assert f"WAP review {rid} is open for wap_dwh" in cycle  # the alert, as the outbox received it
    assert f"airflow variables set wap_approval__wap_dwh 'reject {rid}'" in cycle
    assert "Deferring (no worker slot is held while waiting)" in cycle  # the approval task's log, as shown
    assert f"Review {rid} rejected: nothing will be published" in cycle
    assert "Published review" not in cycle
    outcome = json.loads(cycle.strip().splitlines()[-1])  # `wap cycle --json`: its last line
    assert (outcome["outcome"], outcome["review_id"], outcome["decision"]) == ("rejected", rid, "reject")
    assert outcome["run_id"].startswith("wap_cycle__") and outcome["seconds"]["trigger_to_review"] > 0
    status = _wap(warehouse, "status")
    assert status.returncode == 0, status.stderr
    assert f"wap_approval__wap_dwh = 'reject {rid}'" in status.stdout
    assert f"Review {rid}: rejected" in status.stdout
    outbox = (warehouse.parent / "outbox.jsonl").read_text()
    assert rid in outbox.splitlines()[-1] and "reject" in outbox.splitlines()[-1].lower()
    # The review is closed: approving it now, or anything else, is refused with the reason.
    again = _wap(warehouse, "approve", rid)
    assert again.returncode == 2 and "no review of wap_dwh is open" in again.stderr
    garbage = _wap(warehouse, "reject", "not-an-id")
    assert garbage.returncode == 2 and "is not a review id" in garbage.stderr


def test_an_approved_review_is_published(published: Path) -> None:
    """Production gets the new build through 2022; the write schema keeps the previous production."""
    assert_same(actual_rows(published, "dwh"), expected_rows(2022))
    assert_same(actual_rows(published, "develop_dwh"), expected_rows(2021))
    cycle = (published.parent / "cycle.txt").read_text()
    rid = re.search(r"Review ([0-9a-f]{12}) is open", cycle)[1]
    with duckdb.connect(str(published), read_only=True) as conn:
        (marker,) = conn.execute("select distinct review_id from dwh._wap_marker").fetchall()
        schemas = {row[0] for row in conn.execute("select schema_name from duckdb_schemas()").fetchall()}
    assert marker == (rid,)
    assert "_wap_swap" not in schemas
    assert f"publish: Published review {rid}" in cycle
    outcome = json.loads(cycle.strip().splitlines()[-1])
    assert (outcome["outcome"], outcome["review_id"], outcome["state"]) == ("published", rid, "success")
    assert outcome["seconds"]["decision_to_end"] > 0
    assert "Review " + rid + ": published" in _wap(published, "status").stdout


def expected_rows(through: int) -> list[tuple]:
    measures: dict[tuple[str, str, str, int], dict[str, int]] = defaultdict(dict)
    for row in generate_rows(2015, through):
        measures[(row.region, row.kjonn, row.alder, int(row.tid))][row.contentscode] = row.value
    rows, previous = [], {}
    for key in sorted(measures):
        region, kjonn, alder, tid = key
        employed, population, at_work = (measures[key][c] for c in (EMPLOYED_RESIDENCE, POPULATION, EMPLOYED_WORKPLACE))
        rate = round(employed / population, 4)
        series = (region, kjonn, alder)
        change = round(rate - previous[series], 4) if series in previous else None
        previous[series] = rate
        rows.append(
            (region, kjonn, alder, tid, employed, population, at_work, rate, round(employed / at_work, 4), change)
        )
    return rows


def actual_rows(path: Path, schema: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as conn:
        rows = conn.execute(
            f"select {COLUMNS} from {schema}.sysselsetting_forholdstall order by region, kjonn, alder, tid"
        ).fetchall()
    for row in rows:
        assert row[4].year == row[3] and (row[4].month, row[4].day) == (1, 1), row
    return [row[:4] + row[5:] for row in rows]


def assert_same(actual: list[tuple], expected: list[tuple]) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert got[:7] == want[:7]
        for got_ratio, want_ratio in zip(got[7:], want[7:], strict=True):
            # Both sides round to 4 decimals; allow one unit for a tie rounded the other way.
            assert (got_ratio is None) == (want_ratio is None), (got, want)
            if want_ratio is not None:
                assert got_ratio == pytest.approx(want_ratio, abs=1.0001e-4), (got, want)


def test_write_schema_holds_the_new_build_through_2022(warehouse: Path) -> None:
    assert_same(actual_rows(warehouse, "develop_dwh"), expected_rows(2022))


def test_production_is_untouched_and_ends_in_2021(warehouse: Path) -> None:
    assert_same(actual_rows(warehouse, "dwh"), expected_rows(2021))


def test_every_model_is_in_the_write_schema_and_no_view_names_it(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        relations = conn.execute(
            "select table_name, table_type from information_schema.tables where table_schema = 'develop_dwh'"
        ).fetchall()
        views = conn.execute("select sql from duckdb_views() where schema_name = 'develop_dwh'").fetchall()
    assert sorted(relations) == [
        ("_wap_marker", "BASE TABLE"),
        ("int_sysselsetting_pivoted", "BASE TABLE"),
        ("stg_ssb__befolkning_sysselsetting", "VIEW"),
        ("sysselsetting_forholdstall", "BASE TABLE"),
    ]
    assert views and all("develop_dwh" not in sql.split(" AS ", 1)[1] for (sql,) in views)


def test_audit_marks_the_build_with_a_review_id_bound_to_its_report(warehouse: Path, monkeypatch) -> None:
    from wap.audit.report import review_id
    from wap.audit.stage import diff_report
    from wap.config import load_config

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        marker = conn.execute(
            "select relation, run_id, review_id, row_count from develop_dwh._wap_marker order by relation"
        ).fetchall()
    run_ids, review_ids = {row[1] for row in marker}, {row[2] for row in marker}
    assert len(run_ids) == 1 and len(review_ids) == 1
    (run_id,), (rid,) = run_ids, review_ids
    assert [(row[0], row[3]) for row in marker] == [
        ("*", None),
        ("int_sysselsetting_pivoted", 960),
        ("stg_ssb__befolkning_sysselsetting", 2880),
        ("sysselsetting_forholdstall", 960),
    ]
    # The report is deterministic: recomputing it for the same run gives the id the audit recorded.
    monkeypatch.setenv("WAP_DUCKDB_PATH", str(warehouse))
    report = diff_report(load_config(), run_id=run_id, dbt_tests=_logged_dbt_tests(warehouse))
    assert review_id(run_id, report) == rid
    assert f"Audit of run {run_id}: review {rid}" in _task_log(warehouse.parent, run_id, "audit")
    table = next(e for e in report["relations"] if e["name"] == "sysselsetting_forholdstall")
    assert table["status"] == "changed" and table["diff_method"] == "key"
    assert table["rows"] == {"before": 840, "after": 960, "added": 120, "removed": 0, "changed": 0}
    (period,) = table["periods"]
    assert period["counts"][-2:] == [
        {"period": "2021", "before": 120, "after": 120},
        {"period": "2022", "before": 0, "after": 120},
    ]


def _task_log(home: Path, run_id: str, task_id: str) -> str:
    """Every attempt's log of a task of the cycle's run (the Airflow home's logs folder)."""
    folder = home / "logs" / "dag_id=wap_dwh" / f"run_id={run_id}" / f"task_id={task_id}"
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(folder.rglob("*.log")))


def _logged_dbt_tests(warehouse: Path) -> list[dict]:
    """The dbt test counts as the cycle printed the audit's report (one table row per model)."""
    log = (warehouse.parent / "cycle.txt").read_text()
    rows = []
    for model in ("int_sysselsetting_pivoted", "stg_ssb__befolkning_sysselsetting", "sysselsetting_forholdstall"):
        match = re.search(rf"^\| {model} \| (\d+) \| (\d+) \| (\d+) \|$", log, re.MULTILINE)
        assert match, f"no dbt test counts for {model} in the audit log"
        passed, failed, warned = map(int, match.groups())
        assert passed > 0 and failed == 0
        rows.append({"model": model, "passed": passed, "failed": failed, "warned": warned})
    return rows
