"""`wap cycle`'s own logic: what counts as carried out, what it prints of a failed build, the empty warehouse."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from wap.approval.reviews import Review
from wap.cli import _policy_lines, main
from wap.config import load_config
from wap.local.cycle import CycleResult, _dbt_failures, _downstream, _print_policy, prepare_warehouse


@pytest.mark.parametrize(
    ("decision", "outcome", "carried_out"),
    [
        ("approve", "published", True),
        ("approve", "rejected", False),
        ("approve", "build failed", False),
        ("reject", "rejected", True),
        ("reject", "published", False),
        ("reject", "timed out", False),
        ("none", "published", True),
        ("none", "rejected", True),
        ("none", "failed", False),
    ],
)
def test_a_cycle_is_carried_out_when_it_ends_as_decided(decision: str, outcome: str, carried_out: bool) -> None:
    result = CycleResult(outcome=outcome, run_id="r", decision=decision)
    assert result.carried_out is carried_out
    assert set(result.as_dict()) == {
        "outcome",
        "run_id",
        "review_id",
        "state",
        "decision",
        "failed_tasks",
        "seconds",
        "announced",
        "downstream",
        "by_policy",
    }


def test_a_failed_dbt_task_says_why() -> None:
    log = (
        "[2026-12-01] INFO - 23:29:07  Failure in test unique_orders_history_order_id (models/marts/x.yml)\n"
        "[2026-12-01] INFO - 23:29:07    Got 1 result, configured to fail if != 0\n"
        "[2026-12-01] INFO - 23:29:07  Failure in test unique_orders_history_order_id (models/marts/x.yml)\n"
        "[2026-12-01] INFO - 23:29:07  Done. PASS=0 WARN=0 ERROR=1\n"
    )
    assert _dbt_failures(log) == [
        "Failure in test unique_orders_history_order_id (models/marts/x.yml)",
        "Got 1 result, configured to fail if != 0",
    ]


def test_failure_lines_are_cut_from_json_log_records() -> None:
    log = (
        '{"event":"\\u001b[0m00:14:27  \\u001b[31mFailure in test unique_stg_orders_order_id (models/schema.yml)'
        '\\u001b[0m","logger":"cosmos.hooks.subprocess","task_id":"write.stg_orders.test"}'
    )
    assert _dbt_failures(log) == ["Failure in test unique_stg_orders_order_id (models/schema.yml)"]


def test_a_missing_duckdb_file_is_created_empty(tmp_path: Path) -> None:
    config = load_config({"WAP_DUCKDB_PATH": str(tmp_path / "new" / "warehouse.duckdb")})
    prepare_warehouse(config)
    with duckdb.connect(str(config.duckdb_path), read_only=True) as conn:
        assert conn.execute("select count(*) from duckdb_tables()").fetchone() == (0,)
    prepare_warehouse(config)  # an existing file is left as it is


@pytest.mark.parametrize(("conf", "message"), [("{not json", "--conf is not JSON"), ("[1]", "must be a JSON object")])
def test_a_bad_conf_is_refused_before_anything_starts(
    conf: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cycle", "--decision", "approve", "--conf", conf]) == 2
    assert message in capsys.readouterr().err


def test_the_decision_is_required_and_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["cycle", "--decision", "maybe"])
    assert "invalid choice: 'maybe'" in capsys.readouterr().err


class _Cluster:
    """What `wap cycle` reads of the downstream side: the run's Asset events and the runs they triggered."""

    home = Path("/nowhere")

    def __init__(self, events: list[dict], consumers: list[str], runs: list[tuple[str, str, str]]) -> None:
        self.events, self.consumers, self.runs = events, consumers, runs

    def asset_events(self, dag_id: str, run_id: str) -> list[dict]:
        return self.events

    def asset_consumers(self, uris: object) -> list[str]:
        return self.consumers

    def runs_triggered_by(self, ids: object) -> list[tuple[str, str, str]]:
        return self.runs

    def wait_for(self, predicate, timeout: float, what: str, interval: float = 1.0):
        found = predicate()
        assert found is not None, f"waited for {what}"
        return found

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        return {"count_rows": "success"}

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        return '{"event": "dwh.t has 3 rows, as the publish of run r (review x) left it"}'


def test_the_cycle_shows_what_the_publish_announced_and_the_runs_it_triggered(capsys) -> None:
    event = {"id": 7, "uri": "duckdb:/w.duckdb/dwh/t", "extra": {"status": "changed", "run_id": "r", "review_id": "x"}}
    cluster = _Cluster([event], ["example_wap_consumer"], [("example_wap_consumer", "asset_triggered__1", "success")])
    announced, downstream = _downstream(cluster, "wap_dwh", "r")
    assert announced == [{"uri": event["uri"], "extra": event["extra"]}]
    assert downstream == [{"dag_id": "example_wap_consumer", "run_id": "asset_triggered__1", "state": "success"}]
    out = capsys.readouterr().out
    assert "the publish announced 1 relation(s) as Airflow Assets" in out
    assert "count_rows: dwh.t has 3 rows, as the publish of run r (review x) left it" in out

    assert _downstream(_Cluster([], [], []), "wap_dwh", "r") == ([], [])
    assert "no Asset event (nothing was published)" in capsys.readouterr().out
    assert _downstream(_Cluster([], [], []), "wap_dwh", "r", published=True) == ([], [])
    assert "no Asset event (the publish changed no relation)" in capsys.readouterr().out


# -- the review policy: `wap cycle` and `wap status` say what it decided ------------------------------------------
REMOVED_RULE = "rows_removed <= 0 (*)"
RANGE_RULE = "rows added in the range of the last 5 published cycles (±10%)"


def _verdict(publish: bool, **extra: object) -> dict:
    rules = [
        {"rule": REMOVED_RULE, "held": publish, "detail": "no rows removed" if publish else "t: 12 rows removed"},
        {"rule": RANGE_RULE, "held": True, "detail": "t: 480 rows added, in 430-530"},
    ]
    return {
        "publish": publish,
        "source": "dbt/wap_policy.yml",
        "rules": rules,
        "held": [rule["rule"] for rule in rules if rule["held"]],
        "failed": [rule["rule"] for rule in rules if not rule["held"]],
        **extra,
    }


@pytest.mark.parametrize("policy", [None, {}, {"verdict": None, "policy_file": None}])
def test_the_cycle_says_a_person_decides_without_a_policy(policy, capsys: pytest.CaptureFixture[str]) -> None:
    assert _print_policy(policy) is None
    assert capsys.readouterr().out == "== No review policy: a person decides ==\n"


def test_the_cycle_says_the_policy_approved_and_which_rules_held(capsys: pytest.CaptureFixture[str]) -> None:
    verdict = _verdict(publish=True)
    assert _print_policy({"verdict": verdict, "policy_file": "dbt/wap_policy.yml"}) == verdict
    assert capsys.readouterr().out.splitlines() == [
        "== Approved by policy (dbt/wap_policy.yml): every rule held ==",
        f"   held: {REMOVED_RULE}: no rows removed",
        f"   held: {RANGE_RULE}: t: 480 rows added, in 430-530",
    ]


def test_the_cycle_names_the_rules_that_failed_and_the_error(capsys: pytest.CaptureFixture[str]) -> None:
    verdict = _verdict(publish=False)
    assert _print_policy({"verdict": verdict}) == verdict
    assert capsys.readouterr().out.splitlines() == [
        "== The review policy (dbt/wap_policy.yml) did not approve it: a person decides ==",
        f"   FAILED: {REMOVED_RULE}: t: 12 rows removed",
        f"   held: {RANGE_RULE}: t: 480 rows added, in 430-530",
    ]
    broken = {"publish": False, "source": "dbt/wap_policy.yml", "rules": [], "held": [], "failed": []}
    _print_policy({"verdict": {**broken, "error": "the audit history could not be read: locked"}})
    assert capsys.readouterr().out.splitlines() == [
        "== The review policy (dbt/wap_policy.yml) did not approve it: a person decides ==",
        "   the audit history could not be read: locked",
    ]


def _status_review(policy: dict | None, names: tuple[str, ...] = ("orders", "sysselsetting_forholdstall")) -> Review:
    report = {"relations": [{"name": name} for name in names]}
    return Review("wap_dwh", "manual__3", "pending", "0123456789ab", "pending", None, report, None, policy)


def _history(cycles: int = 3) -> dict:
    return {
        "cycles": [
            {"run_id": f"manual__{i}", "audited_at": f"2026-11-0{i}T10:00:00", "outcome": "published"}
            for i in range(1, cycles + 1)
        ],
        "relations": {
            "ORDERS": {
                "added": [470, 490, 1480][-cycles:],
                "removed": [0, 0, 12][-cycles:],
                "changed": [None] * cycles,
            },
            "sysselsetting_forholdstall": {
                "added": [0, 0, 0][-cycles:],
                "removed": [None, 0, 0][-cycles:],
                "changed": [5, 10, 20][-cycles:],
            },
        },
    }


def test_status_without_a_policy_xcom_says_nothing() -> None:
    assert _policy_lines(_status_review(None)) == []
    assert _policy_lines(_status_review({})) == []


def test_status_says_when_the_policy_is_turned_off() -> None:
    lines = _policy_lines(_status_review({"verdict": None, "policy_file": None, "history": _history(cycles=1)}))
    assert lines == ["  review policy: none (every cycle waits for a reviewer)"]  # no earlier cycle: no series


def test_status_of_a_review_the_policy_published() -> None:
    lines = _policy_lines(_status_review({"verdict": _verdict(publish=True), "history": _history(cycles=1)}))
    assert lines == [
        "  review policy (dbt/wap_policy.yml): published by policy, every rule held:",
        f"    held: {REMOVED_RULE}: no rows removed",
        f"    held: {RANGE_RULE}: t: 480 rows added, in 430-530",
    ]


def test_status_of_a_review_the_policy_left_to_a_person_with_the_series_and_what_is_unusual() -> None:
    unusual = {"orders": ["1,480 rows added, outside 470-490 of the last 2 published cycles", "12 rows removed, x"]}
    policy = {"verdict": _verdict(publish=False), "history": _history(), "unusual": unusual}
    assert _policy_lines(_status_review(policy)) == [
        "  review policy (dbt/wap_policy.yml): waits for a reviewer",
        f"    FAILED: {REMOVED_RULE}: t: 12 rows removed",
        f"    held: {RANGE_RULE}: t: 480 rows added, in 430-530",
        "  the last 2 cycles and this one (oldest first), rows added / removed / changed:",
        "    orders                      ▃▃█  ▁▁█       now 1,480 / 12 / -",  # found case-insensitively
        "                                unusual: 1,480 rows added, outside 470-490 of the last 2 published cycles",
        "                                unusual: 12 rows removed, x",
        "    sysselsetting_forholdstall  ▁▁▁   ▁▁  ▃▅█  now 0 / 0 / 20",
    ]


def test_status_of_an_error_verdict_and_a_relation_without_a_series() -> None:
    verdict = {"publish": False, "source": "p.yml", "rules": [], "held": [], "failed": [], "error": "bad file"}
    lines = _policy_lines(_status_review({"verdict": verdict, "history": _history()}, names=("new_one",)))
    assert lines == [
        "  review policy (p.yml): waits for a reviewer",
        "    bad file",
        "  the last 2 cycles and this one (oldest first), rows added / removed / changed:",
        "    new_one        now - / - / -",  # not in the history: empty sparklines
    ]


def test_status_keeps_a_relations_first_cycle_off_the_scale_of_its_sparkline() -> None:
    history = {
        "cycles": _history()["cycles"],
        "relations": {
            "orders": {  # its first load added its 5,000 rows; then days of 40 and 60
                "added": [5000, 40, 60],
                "removed": [0, 0, 0],
                "changed": [0, 0, 0],
                "after": [5000, 5040, 5100],
                "before": [None, 5000, 5040],
            }
        },
    }
    lines = _policy_lines(_status_review({"verdict": _verdict(publish=True), "history": history}, names=("orders",)))
    assert lines[-1] == "    orders  █▆█  ▁▁▁  ▁▁▁  now 60 / 0 / 0"
