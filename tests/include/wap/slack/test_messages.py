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
