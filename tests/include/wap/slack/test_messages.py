from __future__ import annotations

import json

from wap.slack import messages
from wap.slack.messages import SlackMessage, escape, published, rejected, review_opened, task_failed

from .reports import RUN_ID, entry, report

REVIEW_ID = "0123456789ab"
BASE = "http://airflow.example.com:8080/"
RUN_URL = messages.run_url(BASE, "wap_dwh", RUN_ID)
REPORT_URL = messages.report_url(BASE, "wap_dwh", RUN_ID)
INSTRUCTION = 'airflow variables set wap_approval__wap_dwh "approve 0123456789ab"'


def _opened(body: dict | None = None) -> SlackMessage:
    return review_opened(
        body or report(),
        REVIEW_ID,
        dag_id="wap_dwh",
        run_id=RUN_ID,
        report_url=REPORT_URL,
        run_url=RUN_URL,
        variable="wap_approval__wap_dwh",
    )


def _all_text(message: SlackMessage) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


def _mrkdwn(message: SlackMessage) -> list[str]:
    texts = []
    for block in message.blocks:
        if block["type"] == "section":
            texts.append(block["text"]["text"])
        elif block["type"] == "context":
            texts += [element["text"] for element in block["elements"]]
    return texts


def test_links_use_the_base_url_and_encode_the_run_id() -> None:
    assert RUN_URL == "http://airflow.example.com:8080/dags/wap_dwh/runs/manual__2024-05-01T10%3A00%3A00%2B00%3A00"
    assert REPORT_URL == (
        "http://airflow.example.com:8080/wap/reviews/wap_dwh/manual__2024-05-01T10%3A00%3A00%2B00%3A00"
    )
    assert messages.task_url(BASE, "wap_dwh", "r 1", "audit", 2) == (
        "http://airflow.example.com:8080/dags/wap_dwh/runs/r%201/tasks/audit?try_number=2"
    )


def test_review_opened_carries_headline_relations_links_and_the_exact_instruction() -> None:
    message = _opened()
    text = message.text
    assert text.splitlines()[0].startswith(f"WAP review {REVIEW_ID} is open for wap_dwh, run {RUN_ID}: 4 relations:")
    assert "4 relations: 1 changed, 1 added, 1 removed, 1 unchanged; rows 2,409 → 2,886" in text
    assert (
        "- sysselsetting_forholdstall (table) changed: rows 2,400 → 2,880 (+480 added, -0 removed, 12 changed)" in text
    )
    assert "- fresh (table) added: 4 rows" in text
    assert "- gone (view) removed: had 7 rows" in text
    assert "same" not in text  # unchanged relations are not listed
    assert "dbt tests: 5 passed, 1 warned, 0 failed" in text
    assert f"Report: {REPORT_URL}" in text and f"DAG run: {RUN_URL}" in text
    assert INSTRUCTION in text
    assert "wap approve 0123456789ab" in text
    assert 'airflow variables set wap_approval__wap_dwh "reject 0123456789ab"' in text
    assert "wap reject 0123456789ab" in text

    blocks = _all_text(message)
    assert message.blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": f"WAP review {REVIEW_ID}: wap_dwh", "emoji": True},
    }
    sections = "\n".join(_mrkdwn(message))
    assert f"<{REPORT_URL}|Open the report>" in sections
    assert f"<{RUN_URL}|Open the DAG run>" in sections
    assert f"```{INSTRUCTION}```" in sections
    assert "set the Variable `wap_approval__wap_dwh` to `approve 0123456789ab`" in sections
    assert "`wap approve 0123456789ab`" in sections
    assert "• `sysselsetting_forholdstall` (table) *changed*: rows 2,400 → 2,880" in sections
    assert "1 column added" in sections
    assert REVIEW_ID in blocks


def test_review_opened_lists_at_most_ten_relations_then_and_n_more() -> None:
    many = [entry(f"t{i:02d}", "added", after=i, added=i) for i in range(13)]
    message = _opened(report(many))
    listed = [line for line in message.text.splitlines() if line.startswith("- t")]
    assert [line.split()[1] for line in listed] == [f"t{i:02d}" for i in range(10)]
    assert "- and 3 more" in message.text
    assert "_and 3 more_" in "\n".join(_mrkdwn(message))


def test_review_opened_without_changes_says_so() -> None:
    message = _opened(report([entry("same", "unchanged", before=1, after=1, added=0, removed=0, changed=0)]))
    assert "*Relations*: none changed." in _mrkdwn(message)


def test_data_is_escaped_for_mrkdwn() -> None:
    nasty = "a<b>&c"
    body = report([entry(f"{nasty}`x", "added", after=1, added=1)], run_id=f"run<{nasty}>")
    message = review_opened(
        body,
        REVIEW_ID,
        dag_id="wap_dwh",
        run_id=f"run<{nasty}>",
        report_url="http://h/x?a=1&b=<2>",
        run_url=RUN_URL,
        variable="wap_approval__wap_dwh",
    )
    for text in [message.text, *_mrkdwn(message)]:
        assert "<b>" not in text and "&c" not in text and "<run" not in text
    assert "`a&lt;b&gt;&amp;c'x`" in "\n".join(_mrkdwn(message))  # a backtick cannot end the code span
    assert "<http://h/x?a=1&amp;b=&lt;2&gt;|Open the report>" in "\n".join(_mrkdwn(message))
    assert escape("<@U123> & <!channel>") == "&lt;@U123&gt; &amp; &lt;!channel&gt;"


def test_long_texts_are_truncated_to_slack_limits() -> None:
    body = report([entry("x" * 500, "added", after=1, added=1)])
    message = _opened(body)
    assert "x" * 79 + "…" in message.text and "x" * 81 not in message.text
    error = ValueError("boom " * 2000)
    failed = task_failed(
        dag_id="wap_dwh", run_id=RUN_ID, task_id="audit", try_number=2, exception=error, log_url=None, run_url=RUN_URL
    )
    assert len(failed.text) < 600
    assert all(len(text) <= messages.MAX_SECTION for text in _mrkdwn(failed))
    assert all(
        len(block["text"]["text"]) <= messages.MAX_HEADER for block in failed.blocks if block["type"] == "header"
    )


def test_published_names_schemas_review_and_approver() -> None:
    message = published(
        report(), REVIEW_ID, dag_id="wap_dwh", run_id=RUN_ID, run_url=RUN_URL, report_url=REPORT_URL, decided_by="ada"
    )
    first = message.text.splitlines()[0]
    assert first == (
        f"WAP published review {REVIEW_ID} of wap_dwh (approved by ada): dwh now holds the build of run {RUN_ID} "
        "(audited in develop_dwh); the previous production data is in develop_dwh."
    )
    assert "rows 2,409 → 2,886" in message.text
    sections = "\n".join(_mrkdwn(message))
    assert "approved by ada and published: `dwh` now holds the build" in sections
    assert f"<{RUN_URL}|Open the DAG run>" in sections
    anonymous = published(None, REVIEW_ID, dag_id="wap_dwh", run_id=RUN_ID, run_url=RUN_URL)
    assert "(approved)" in anonymous.text
    assert "Airflow Assets" not in message.text and "Asset event" not in anonymous.text  # not known: not said


def test_published_says_what_was_announced_downstream() -> None:
    kwargs = {"dag_id": "wap_dwh", "run_id": RUN_ID, "run_url": RUN_URL}
    message = published(report(), REVIEW_ID, announced=["orders", "payments"], **kwargs)
    assert "Announced to downstream DAGs as Airflow Assets: orders, payments" in message.text
    assert "Airflow Assets: orders, payments" in "\n".join(_mrkdwn(message))
    nothing = published(report(), REVIEW_ID, announced=[], **kwargs)
    assert "No relation changed: no Asset event, no downstream DAG triggered" in nothing.text


def test_rejected_and_timeout() -> None:
    message = rejected(
        REVIEW_ID, dag_id="wap_dwh", run_id=RUN_ID, run_url=RUN_URL, decided_by="bob", reason="numbers look <off>"
    )
    assert message.text.splitlines()[0] == (
        f"WAP review {REVIEW_ID} of wap_dwh (run {RUN_ID}) was rejected by bob: nothing was published, "
        "production is unchanged."
    )
    assert "Reason: numbers look &lt;off&gt;" in message.text
    assert message.blocks[0]["text"]["text"] == "Rejected: wap_dwh"
    timeout = rejected(REVIEW_ID, dag_id="wap_dwh", run_id=RUN_ID, run_url=RUN_URL, decision="timeout", report=report())
    assert "timed out without a decision (treated as a reject): nothing was published, dwh is unchanged" in timeout.text
    assert timeout.blocks[0]["text"]["text"] == "Timed out: wap_dwh"


def test_task_failed_names_task_try_error_and_log() -> None:
    log_url = messages.task_url(BASE, "wap_dwh", RUN_ID, "audit", 2)
    message = task_failed(
        dag_id="wap_dwh",
        run_id=RUN_ID,
        task_id="audit",
        try_number=2,
        exception=RuntimeError("relation <x> & ```y```"),
        log_url=log_url,
        run_url=RUN_URL,
    )
    assert message.text.splitlines()[0] == (
        f"WAP task failed: wap_dwh.audit (run {RUN_ID}, try 2): RuntimeError: relation &lt;x&gt; &amp; ```y```"
    )
    assert f"Log: {log_url}" in message.text
    sections = "\n".join(_mrkdwn(message))
    assert "```RuntimeError: relation &lt;x&gt; &amp; '''y'''```" in sections
    assert f"<{log_url}|Open the task log>" in sections
    assert messages.error_text(None) == "no exception recorded"
    assert messages.error_text(KeyError()) == "KeyError"


# -- the review policy -------------------------------------------------------------------------------------------
SOURCE = "dbt/wap_policy.yml"
REMOVED_RULE = "rows_removed <= 0 (*)"
RANGE_RULE = "rows added in the range of the last 5 published cycles (±10%)"


def _verdict(*rules: tuple[str, bool, str], **extra: object) -> dict:
    """A verdict as :func:`wap.policy.evaluate` gives it (and the audit's ``policy`` XCom carries it)."""
    return {
        "publish": all(held for _, held, _ in rules) and bool(rules) and "error" not in extra,
        "source": SOURCE,
        "rules": [{"rule": rule, "held": held, "detail": detail} for rule, held, detail in rules],
        "held": [rule for rule, held, _ in rules if held],
        "failed": [rule for rule, held, _ in rules if not held],
        **extra,
    }


PUBLISHING = _verdict(
    ("no_removed_relations", True, "no relation removed"),
    (REMOVED_RULE, True, "no rows removed"),
    (RANGE_RULE, True, "sysselsetting_forholdstall: 480 rows added, in 430-530"),
)
FAILING = _verdict(
    ("no_removed_relations", False, "removed: gone"),
    (REMOVED_RULE, False, "sysselsetting_forholdstall: 12 rows removed (limit 0)"),
    (RANGE_RULE, True, "sysselsetting_forholdstall: 480 rows added, in 430-530"),
)


def _opened_with(policy: dict | None) -> SlackMessage:
    return review_opened(
        report(),
        REVIEW_ID,
        dag_id="wap_dwh",
        run_id=RUN_ID,
        report_url=REPORT_URL,
        run_url=RUN_URL,
        variable="wap_approval__wap_dwh",
        policy=policy,
    )


def test_a_review_the_policy_approved_says_so_and_lists_the_rules_that_held() -> None:
    message = _opened_with(PUBLISHING)
    first = message.text.splitlines()[0]
    assert first == (
        f"WAP review {REVIEW_ID} of wap_dwh (run {RUN_ID}) was approved by policy ({SOURCE}): every rule held"
    )
    assert (
        "Rules that held: no_removed_relations, rows_removed &lt;= 0 (*), "
        "rows added in the range of the last 5 published cycles (±10%)" in message.text
    )
    assert "4 relations: 1 changed, 1 added, 1 removed, 1 unchanged" in message.text
    assert "- fresh (table) added: 4 rows" in message.text
    assert "Publishing now: no reviewer is needed." in message.text
    assert message.blocks[0]["text"] == {"type": "plain_text", "text": "Approved by policy: wap_dwh", "emoji": True}
    sections = "\n".join(_mrkdwn(message))
    assert f"was *approved by policy* (`{SOURCE}`): every rule held, so it publishes without a reviewer" in sections
    assert (
        "*Rules that held*\n• no_removed_relations\n• rows_removed &lt;= 0 (*)\n• rows added in the range" in sections
    )
    assert f"<{REPORT_URL}|Open the report>" in sections and f"<{RUN_URL}|Open the DAG run>" in sections
    # Nobody needs to act: no instruction to approve or reject, nothing about failures.
    for text in (message.text, sections):
        assert "approve 0123456789ab" not in text and "reject 0123456789ab" not in text
        assert "wap approve" not in text and "To publish" not in text
        assert "did not publish" not in text


def test_a_review_the_policy_did_not_approve_names_the_failed_rules_with_their_figures() -> None:
    message = _opened_with(FAILING)
    text = message.text
    assert text.splitlines()[0].startswith(f"WAP review {REVIEW_ID} is open for wap_dwh")
    assert f"The review policy ({SOURCE}) did not publish it:" in text
    assert "- no_removed_relations: removed: gone" in text
    assert "- rows_removed &lt;= 0 (*): sysselsetting_forholdstall: 12 rows removed (limit 0)" in text
    assert RANGE_RULE not in text  # a rule that held is no failure
    assert INSTRUCTION in text and "wap reject 0123456789ab" in text  # a person decides, as without a policy
    assert message.blocks[0]["text"]["text"] == f"WAP review {REVIEW_ID}: wap_dwh"

    (policy_section,) = [section for section in _mrkdwn(message) if "review policy" in section]
    assert policy_section.startswith(f"*The review policy* (`{SOURCE}`) *did not publish it*:")
    assert "• no_removed_relations: removed: gone" in policy_section
    assert "• rows_removed &lt;= 0 (*): sysselsetting_forholdstall: 12 rows removed (limit 0)" in policy_section
    sections = "\n".join(_mrkdwn(message))
    assert RANGE_RULE not in sections
    assert f"```{INSTRUCTION}```" in sections
    assert "<=" not in text and "<=" not in sections  # rule names are data: escaped for mrkdwn


def test_a_policy_that_could_not_decide_shows_its_error() -> None:
    verdict = _verdict(error="the audit history could not be read: <connection refused> & more")
    assert verdict["publish"] is False and verdict["rules"] == []
    message = _opened_with(verdict)
    expected = "the policy could not decide: the audit history could not be read: &lt;connection refused&gt; &amp; more"
    assert f"- {expected}" in message.text
    assert f"• {expected}" in "\n".join(_mrkdwn(message))
    assert "<connection refused>" not in message.text + "\n".join(_mrkdwn(message))
    assert INSTRUCTION in message.text


def test_without_a_policy_or_a_failure_the_alert_is_the_usual_one() -> None:
    plain = _opened()
    assert _opened_with(None) == plain
    # A verdict that does not publish but names no failure (and no error) adds nothing.
    assert _opened_with({"publish": False, "source": SOURCE, "rules": [], "held": [], "failed": []}) == plain


def test_policy_failures_are_the_failed_rules_and_the_error_first_unescaped() -> None:
    assert messages.policy_failures(FAILING) == [
        "no_removed_relations: removed: gone",
        f"{REMOVED_RULE}: sysselsetting_forholdstall: 12 rows removed (limit 0)",
    ]
    assert messages.policy_failures(PUBLISHING) == []
    with_error = {**FAILING, "error": "rules.no_removed_relations: not a boolean"}
    assert (
        messages.policy_failures(with_error)[0]
        == "the policy could not decide: rules.no_removed_relations: not a boolean"
    )
    assert len(messages.policy_failures(with_error)) == 3
    assert messages.policy_failures({"rules": [{"rule": "x", "held": False}]}) == ["x: failed"]  # no detail
    assert messages.policy_failures({}) == []


def test_published_by_policy_names_the_rules_that_held() -> None:
    message = published(
        report(),
        REVIEW_ID,
        dag_id="wap_dwh",
        run_id=RUN_ID,
        run_url=RUN_URL,
        report_url=REPORT_URL,
        decided_by="policy",
        rules=PUBLISHING["held"],
    )
    first = message.text.splitlines()[0]
    assert first == (
        f"WAP published review {REVIEW_ID} of wap_dwh (by policy): dwh now holds the build of run {RUN_ID} "
        "(audited in develop_dwh); the previous production data is in develop_dwh. Rules that held: "
        "no_removed_relations, rows_removed &lt;= 0 (*), rows added in the range of the last 5 published cycles (±10%)."
    )
    assert "approved by" not in message.text
    assert message.blocks[0]["text"]["text"] == "Published by policy: wap_dwh"
    sections = "\n".join(_mrkdwn(message))
    assert f"Review `{REVIEW_ID}` was published by policy: `dwh` now holds the build of run" in sections
    assert "develop_dwh`. Rules that held: no_removed_relations, rows_removed &lt;= 0 (*), rows added" in sections
    assert "<=" not in sections and "approved by" not in sections
    without_rules = published(
        report(), REVIEW_ID, dag_id="wap_dwh", run_id=RUN_ID, run_url=RUN_URL, decided_by="policy"
    )
    assert "(by policy)" in without_rules.text and "Rules that held" not in without_rules.text


def test_published_by_a_person_is_unchanged_and_ignores_the_rules() -> None:
    kwargs = {"dag_id": "wap_dwh", "run_id": RUN_ID, "run_url": RUN_URL, "report_url": REPORT_URL}
    message = published(report(), REVIEW_ID, decided_by="alice", rules=["no_removed_relations"], **kwargs)
    assert message.text.splitlines()[0] == (
        f"WAP published review {REVIEW_ID} of wap_dwh (approved by alice): dwh now holds the build of run {RUN_ID} "
        "(audited in develop_dwh); the previous production data is in develop_dwh."
    )
    assert "policy" not in message.text and "Rules that held" not in message.text
    assert message.blocks[0]["text"]["text"] == "Published: wap_dwh"
    sections = "\n".join(_mrkdwn(message))
    assert f"Review `{REVIEW_ID}` was approved by alice and published: `dwh` now holds the build" in sections
    assert "policy" not in sections
    escaped = published(report(), REVIEW_ID, decided_by="<@U1> & co", **kwargs)
    assert "(approved by &lt;@U1&gt; &amp; co)" in escaped.text
    assert "was approved by &lt;@U1&gt; &amp; co and published" in "\n".join(_mrkdwn(escaped))
