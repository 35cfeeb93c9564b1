"""The Airflow notifier: builds the message from a callback's context and sends it (fake Slack or the outbox)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fakes.slack_server import FakeSlackServer
from wap.slack.callbacks import (
    WapSlackNotifier,
    airflow_base_url,
    audit_result,
    on_failure,
    on_published,
    on_rejected,
    on_review_opened,
    policy_verdict,
)
from wap.slack.notify import read_outbox

from .reports import RUN_ID, audit_xcom

BASE = "https://airflow.example.com"
ENCODED_RUN = "manual__2024-05-01T10%3A00%3A00%2B00%3A00"


class FakeTI:
    """The parts of a RuntimeTaskInstance the notifier reads."""

    def __init__(self, task_id: str, xcoms: dict[tuple[str, str], Any], try_number: int = 1) -> None:
        self.dag_id = "wap_dwh"
        self.run_id = RUN_ID
        self.task_id = task_id
        self.try_number = try_number
        self.xcoms = xcoms

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.xcoms.get((task_ids, key))


def _context(task_id: str, xcoms: dict[tuple[str, str], Any] | None = None, **extra: Any) -> dict[str, Any]:
    ti = FakeTI(task_id, xcoms or {}, try_number=extra.pop("try_number", 1))
    return {"ti": ti, "task_instance": ti, "run_id": RUN_ID, **extra}


@pytest.fixture
def outbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "outbox.jsonl"
    monkeypatch.setenv("WAP_SLACK_OUTBOX", str(path))
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE + "/")
    for name in ("AIRFLOW_CONN_SLACK_DEFAULT", "AIRFLOW_CONN_SLACK_API_DEFAULT"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_review_opened_posts_the_alert_to_the_webhook(
    slack_server: FakeSlackServer, outbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_server.webhook_connection())
    xcom = audit_xcom()
    notifier = on_review_opened()

    notifier(_context("audit", {("audit", "return_value"): xcom}))  # how Airflow calls a callback

    (payload,) = slack_server.messages()
    rid = xcom["review_id"]
    text = payload["text"]
    assert text.startswith(f"WAP review {rid} is open for wap_dwh, run {RUN_ID}: 4 relations")
    assert f'airflow variables set wap_approval__wap_dwh "approve {rid}"' in text
    assert f"wap approve {rid}" in text
    assert f"Report: {BASE}/wap/reviews/wap_dwh/{ENCODED_RUN}" in text
    assert f"DAG run: {BASE}/dags/wap_dwh/runs/{ENCODED_RUN}" in text
    sections = [block["text"]["text"] for block in payload["blocks"] if block["type"] == "section"]
    assert f"<{BASE}/wap/reviews/wap_dwh/{ENCODED_RUN}|Open the report>" in "\n".join(sections)
    assert not outbox.exists()


def test_the_nested_audit_xcom_form_is_read_too() -> None:
    xcom = audit_xcom()
    report, rid = audit_result({"report": {k: v for k, v in xcom.items() if k != "review_id"}, "review_id": "abc"})
    assert rid == "abc" and report is not None and report["summary"] == xcom["summary"]
    flat, flat_id = audit_result(xcom)
    assert flat_id == xcom["review_id"] and "review_id" not in flat
    assert audit_result(None) == (None, None)


def test_published_names_who_approved(outbox: Path) -> None:
    xcom = audit_xcom()
    decision = {"decision": "approve", "review_id": xcom["review_id"], "decided_by": "ada", "reason": "ok"}
    on_published().notify(
        _context(
            "publish",
            {("audit", "return_value"): xcom, ("await_approval", "decision"): decision},
        )
    )
    (record,) = read_outbox(outbox)
    assert record["text"].startswith(f"WAP published review {xcom['review_id']} of wap_dwh (approved by ada): dwh")
    assert "Airflow Assets" not in record["text"]  # the publish returned nothing: nothing is said about it


@pytest.mark.parametrize(
    ("outcome", "said"),
    [
        ({"outcome": "published", "announced": [{"relation": "orders"}]}, "as Airflow Assets: orders"),
        ({"outcome": "published", "announced": []}, "No relation changed: no Asset event"),
        ({"outcome": "already published", "announced": []}, None),  # a no-op retry: the earlier try announced
    ],
)
def test_published_says_what_the_publish_announced(outbox: Path, outcome: dict, said: str | None) -> None:
    xcom = audit_xcom()
    decision = {"decision": "approve", "review_id": xcom["review_id"]}
    values = {("audit", "return_value"): xcom, ("await_approval", "decision"): decision}
    on_published().notify(_context("publish", {**values, ("publish", "return_value"): outcome}))
    (record,) = read_outbox(outbox)
    if said is None:
        assert "Asset" not in record["text"]
    else:
        assert said in record["text"]


def test_rejected_and_timeout_read_the_sensor_decision(outbox: Path) -> None:
    xcom = audit_xcom()
    rid = xcom["review_id"]
    for decision in (
        {"decision": "reject", "review_id": rid, "decided_by": "bob", "reason": f"review {rid} rejected"},
        {"decision": "timeout", "review_id": rid, "decided_by": None, "reason": "timed out at 2024-05-02"},
    ):
        on_rejected().notify(
            _context(
                "await_approval",
                {("audit", "return_value"): xcom, ("await_approval", "decision"): decision},
            )
        )
    rejected, timeout = (record["text"] for record in read_outbox(outbox))
    assert f"WAP review {rid} of wap_dwh (run {RUN_ID}) was rejected by bob: nothing was published" in rejected
    assert "timed out without a decision (treated as a reject): nothing was published, dwh is unchanged" in timeout


def test_task_failed_links_the_task_log(outbox: Path) -> None:
    on_failure()(_context("audit", exception=RuntimeError("warehouse is locked"), try_number=2))
    (record,) = read_outbox(outbox)
    lines = record["text"].splitlines()
    assert lines[0] == f"WAP task failed: wap_dwh.audit (run {RUN_ID}, try 2): RuntimeError: warehouse is locked"
    assert lines[1] == f"Log: {BASE}/dags/wap_dwh/runs/{ENCODED_RUN}/tasks/audit?try_number=2"


def test_template_syntax_in_data_is_not_rendered(outbox: Path) -> None:
    on_failure()(_context("audit", exception=ValueError("bad {{ ds }} {% raw %}")))
    (record,) = read_outbox(outbox)
    assert "bad {{ ds }} {% raw %}" in record["text"]


def test_a_message_that_cannot_be_built_is_logged_not_raised(outbox: Path, caplog: pytest.LogCaptureFixture) -> None:
    on_review_opened().notify(_context("audit", {}))  # the audit returned nothing
    assert not outbox.exists()
    assert "Cannot build the Slack review_opened message" in caplog.text


def test_unknown_kind_is_refused_at_parse_time() -> None:
    with pytest.raises(ValueError, match="unknown Slack message kind"):
        WapSlackNotifier("approved")  # type: ignore[arg-type]


def test_base_url_falls_back_to_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    assert airflow_base_url() == "http://localhost:8080"
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://af.example.com/sub/")
    assert airflow_base_url() == "https://af.example.com/sub"


# -- the review policy -------------------------------------------------------------------------------------------
REMOVED_RULE = "rows_removed <= 0 (*)"
RANGE_RULE = "rows added in the range of the last 5 published cycles (±10%)"


def _policy_xcom(publish: bool) -> dict[str, Any]:
    """The audit's ``policy`` XCom: the verdict, the policy file, the recent cycles, what is unusual."""
    rules = [
        {"rule": REMOVED_RULE, "held": publish, "detail": "no rows removed" if publish else "t: 12 rows removed"},
        {"rule": RANGE_RULE, "held": True, "detail": "t: 480 rows added, in 430-530"},
    ]
    verdict = {
        "publish": publish,
        "source": "dbt/wap_policy.yml",
        "rules": rules,
        "held": [rule["rule"] for rule in rules if rule["held"]],
        "failed": [rule["rule"] for rule in rules if not rule["held"]],
    }
    return {"verdict": verdict, "policy_file": "dbt/wap_policy.yml", "history": {"cycles": [], "relations": {}}}


def test_review_opened_passes_the_policys_approval_through(outbox: Path) -> None:
    xcom = audit_xcom()
    on_review_opened().notify(
        _context("audit", {("audit", "return_value"): xcom, ("audit", "policy"): _policy_xcom(publish=True)})
    )
    (record,) = read_outbox(outbox)
    assert record["text"].startswith(
        f"WAP review {xcom['review_id']} of wap_dwh (run {RUN_ID}) was approved by policy (dbt/wap_policy.yml)"
    )
    assert "Rules that held: rows_removed &lt;= 0 (*), " + RANGE_RULE in record["text"]
    assert "wap approve" not in record["text"]
    assert record["blocks"][0]["text"]["text"] == "Approved by policy: wap_dwh"


def test_review_opened_names_the_rules_that_failed(outbox: Path) -> None:
    xcom = audit_xcom()
    on_review_opened().notify(
        _context("audit", {("audit", "return_value"): xcom, ("audit", "policy"): _policy_xcom(publish=False)})
    )
    (record,) = read_outbox(outbox)
    text = record["text"]
    assert text.startswith(f"WAP review {xcom['review_id']} is open for wap_dwh")
    assert "The review policy (dbt/wap_policy.yml) did not publish it:" in text
    assert "- rows_removed &lt;= 0 (*): t: 12 rows removed" in text
    assert RANGE_RULE not in text
    assert f'airflow variables set wap_approval__wap_dwh "approve {xcom["review_id"]}"' in text


def test_review_opened_without_a_policy_verdict_is_the_usual_alert(outbox: Path) -> None:
    xcom = audit_xcom()
    no_policy = {"verdict": None, "policy_file": None, "history": {"cycles": [], "relations": {}}, "unusual": {}}
    on_review_opened().notify(_context("audit", {("audit", "return_value"): xcom, ("audit", "policy"): no_policy}))
    on_review_opened().notify(_context("audit", {("audit", "return_value"): xcom}))  # an audit before the policy
    with_none, without = read_outbox(outbox)
    assert with_none["text"] == without["text"]
    assert "policy" not in without["text"]


def test_published_by_policy_names_the_rules_that_held(outbox: Path) -> None:
    xcom = audit_xcom()
    decision = {"decision": "approve", "review_id": xcom["review_id"], "decided_by": "policy"}
    values = {
        ("audit", "return_value"): xcom,
        ("audit", "policy"): _policy_xcom(publish=True),
        ("await_approval", "decision"): decision,
    }
    on_published().notify(_context("publish", values))
    (record,) = read_outbox(outbox)
    text = record["text"]
    assert text.startswith(f"WAP published review {xcom['review_id']} of wap_dwh (by policy): dwh")
    assert f"Rules that held: rows_removed &lt;= 0 (*), {RANGE_RULE}." in text
    assert record["blocks"][0]["text"]["text"] == "Published by policy: wap_dwh"


def test_published_by_a_person_after_a_failed_policy_names_the_person(outbox: Path) -> None:
    xcom = audit_xcom()
    decision = {"decision": "approve", "review_id": xcom["review_id"], "decided_by": "alice"}
    values = {
        ("audit", "return_value"): xcom,
        ("audit", "policy"): _policy_xcom(publish=False),
        ("await_approval", "decision"): decision,
    }
    on_published().notify(_context("publish", values))
    (record,) = read_outbox(outbox)
    assert record["text"].startswith(f"WAP published review {xcom['review_id']} of wap_dwh (approved by alice): dwh")
    assert "Rules that held" not in record["text"] and "policy" not in record["text"]


@pytest.mark.parametrize(
    "value",
    [None, "publish", 42, [], {}, {"verdict": None}, {"verdict": "yes"}, {"verdict": ["publish"]}, {"other": {}}],
)
def test_policy_verdict_of_junk_is_none(value: Any) -> None:
    assert policy_verdict(value) is None


def test_policy_verdict_is_a_copy_of_the_verdict() -> None:
    xcom = _policy_xcom(publish=True)
    verdict = policy_verdict(xcom)
    assert verdict == xcom["verdict"] and verdict is not xcom["verdict"]
