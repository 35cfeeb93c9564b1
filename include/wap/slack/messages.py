"""The Slack messages of the review cycle: Block Kit blocks plus a plain-text fallback, built from plain data.

Pure functions, no Airflow: the notifier (``wap.slack.callbacks``), the CLI and the demo share them. Every text that
comes from data (relation names, run ids, users, exception messages) is escaped for Slack's mrkdwn (``&``, ``<``,
``>``) so it can neither break the layout nor turn into a link or a mention.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from wap.approval.protocol import POLICY_USER
from wap.audit.report import headline

#: How many changed relations a message lists before "and N more".
MAX_RELATIONS = 10
#: Slack's limits: a section's text, a header's text; the fallback is kept well below Slack's own cap.
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_FALLBACK = 4000
#: Relation names are cut to this length.
MAX_NAME = 80
#: How much of an exception message a failure alert carries (text fallback / block).
MAX_ERROR_TEXT = 300
MAX_ERROR_BLOCK = 1500

_STATUS_ORDER = {"changed": 0, "added": 1, "removed": 2}
_COLUMN_CHANGES = (("added", "added"), ("removed", "removed"), ("type_changed", "retyped"))


@dataclass(frozen=True)
class SlackMessage:
    """One Slack message: ``text`` is the fallback (notifications, screen readers), ``blocks`` the Block Kit body."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


# -- text helpers -----------------------------------------------------------------------------------------------
def escape(value: Any) -> str:
    """``value`` as text safe inside Slack mrkdwn: ``&``, ``<`` and ``>`` become entities."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _code(value: Any, limit: int = 120) -> str:
    """Inline code of a data value (a backtick inside would end the span: it becomes a quote)."""
    return "`" + escape(truncate(str(value).replace("`", "'"), limit)) + "`"


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _link(url: str, label: str) -> str:
    return f"<{escape(url)}|{escape(label)}>"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_SECTION)}}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": truncate(text, MAX_HEADER), "emoji": True}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, MAX_SECTION)}]}


def _message(lines: Sequence[str], blocks: list[dict[str, Any]]) -> SlackMessage:
    return SlackMessage(text=truncate("\n".join(line for line in lines if line), MAX_FALLBACK), blocks=blocks)


# -- links ------------------------------------------------------------------------------------------------------
def run_url(base_url: str, dag_id: str, run_id: str) -> str:
    """The DAG run in Airflow's UI."""
    return f"{base_url.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def task_url(base_url: str, dag_id: str, run_id: str, task_id: str, try_number: int | None = None) -> str:
    """A task instance of a DAG run (its log) in Airflow's UI."""
    url = f"{run_url(base_url, dag_id, run_id)}/tasks/{quote(task_id, safe='')}"
    return f"{url}?try_number={try_number}" if try_number else url


def report_url(base_url: str, dag_id: str, run_id: str) -> str:
    """The review's report in the "WAP reviews" view of the plugin mounted at ``/wap``."""
    return f"{base_url.rstrip('/')}/wap/reviews/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"


# -- the report in a few lines ----------------------------------------------------------------------------------
def _relation_detail(entry: Mapping[str, Any]) -> str:
    rows = entry.get("rows") or {}
    status = entry.get("status")
    if status == "added":
        return f"{_n(rows.get('after'))} rows"
    if status == "removed":
        return f"had {_n(rows.get('before'))} rows"
    detail = (
        f"rows {_n(rows.get('before'))} → {_n(rows.get('after'))} (+{_n(rows.get('added'))} added, "
        f"-{_n(rows.get('removed'))} removed, {_n(rows.get('changed'))} changed)"
    )
    columns = entry.get("columns") or {}
    counts = [(len(columns.get(key) or []), label) for key, label in _COLUMN_CHANGES]
    schema = ", ".join(f"{n} column{'s' if n != 1 else ''} {label}" for n, label in counts if n)
    if schema:
        detail += f"; {schema}"
    if entry.get("duplicate_keys"):
        detail += "; key not unique, compared as a multiset"
    return detail


def _touched(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The changed, added and removed relations, in that order."""
    touched = [e for e in report.get("relations") or [] if e.get("status") in _STATUS_ORDER]
    return sorted(touched, key=lambda e: (_STATUS_ORDER[e["status"]], str(e.get("name"))))


def relation_line(entry: Mapping[str, Any]) -> str:
    """One changed, added or removed relation: what happened to its rows and columns (unescaped)."""
    kind = entry.get("kind") or entry.get("kind_before") or "relation"
    name = truncate(str(entry.get("name")), MAX_NAME)
    return f"{name} ({kind}) {entry.get('status')}: {_relation_detail(entry)}"


def relation_lines(report: Mapping[str, Any], limit: int = MAX_RELATIONS) -> list[str]:
    """The changed, added and removed relations (in that order), at most ``limit``, then "and N more"."""
    touched = _touched(report)
    lines = [relation_line(entry) for entry in touched[:limit]]
    if len(touched) > limit:
        lines.append(f"and {len(touched) - limit} more")
    return lines


def _dbt_tests(report: Mapping[str, Any]) -> str | None:
    tests = report.get("dbt_tests") or []
    if not tests:
        return None
    total = {key: sum(int(t.get(key) or 0) for t in tests) for key in ("passed", "warned", "failed")}
    return f"dbt tests: {total['passed']} passed, {total['warned']} warned, {total['failed']} failed"


def _relations_section(report: Mapping[str, Any], limit: int = MAX_RELATIONS) -> str:
    touched = _touched(report)
    if not touched:
        return "*Relations*: none changed."
    bullets = [
        f"• {_code(entry.get('name'), MAX_NAME)} ({escape(entry.get('kind') or entry.get('kind_before') or '')}) "
        f"*{escape(entry.get('status'))}*: {escape(_relation_detail(entry))}"
        for entry in touched[:limit]
    ]
    if len(touched) > limit:
        bullets.append(f"_and {len(touched) - limit} more_")
    return "*Relations*\n" + "\n".join(bullets)


def policy_failures(verdict: Mapping[str, Any]) -> list[str]:
    """The rules of a review policy that did not hold, each with its figures (unescaped); the policy's error if it
    could not be read."""
    lines = [
        f"{rule['rule']}: {rule.get('detail') or 'failed'}"
        for rule in verdict.get("rules") or []
        if not rule.get("held")
    ]
    if verdict.get("error"):
        lines.insert(0, f"the policy could not decide: {verdict['error']}")
    return lines


def _policy_source(verdict: Mapping[str, Any]) -> str:
    return str(verdict.get("source") or "the review policy")


def _policy_approved(
    report: Mapping[str, Any], review_id: str, verdict: Mapping[str, Any], *, dag_id: str, run_id: str, links: str
) -> SlackMessage:
    """The review the policy approved as it opened: nobody needs to act; publish follows."""
    held = [str(name) for name in verdict.get("held") or []]
    source = _policy_source(verdict)
    text = [
        escape(f"WAP review {review_id} of {dag_id} (run {run_id}) was approved by policy ({source}): every rule held"),
        escape(f"Rules that held: {', '.join(held)}"),
        escape(headline(report)),
        *(escape(f"- {line}") for line in relation_lines(report)),
        "Publishing now: no reviewer is needed.",
    ]
    blocks = [
        _header(f"Approved by policy: {dag_id}"),
        _section(
            f"Review {_code(review_id)} of run {_code(run_id)} was *approved by policy* ({_code(source)}): every rule "
            f"held, so it publishes without a reviewer.\n*{escape(headline(report))}*"
        ),
        _section("*Rules that held*\n" + "\n".join(f"• {escape(name)}" for name in held)),
        _section(_relations_section(report)),
        _section(links),
    ]
    return _message(text, blocks)


# -- the messages -----------------------------------------------------------------------------------------------
def review_opened(
    report: Mapping[str, Any],
    review_id: str,
    *,
    dag_id: str,
    run_id: str,
    report_url: str,
    run_url: str,
    variable: str,
    approve_command: str | None = None,
    reject_command: str | None = None,
    policy: Mapping[str, Any] | None = None,
) -> SlackMessage:
    """The alert to reviewers: what changed, where to read it, and exactly how to approve or reject it.

    ``policy`` is the review policy's verdict (:func:`wap.policy.evaluate`): when every rule held, the message says
    the policy approved it (nobody needs to act); otherwise it names the rules that failed, with their figures.
    """
    links = f"{_link(report_url, 'Open the report')}  ·  {_link(run_url, 'Open the DAG run')}"
    if policy and policy.get("publish"):
        return _policy_approved(report, review_id, policy, dag_id=dag_id, run_id=run_id, links=links)
    failures = policy_failures(policy) if policy else []
    approve_command = approve_command or f"wap approve {review_id}"
    reject_command = reject_command or f"wap reject {review_id}"
    approve_set = f'airflow variables set {variable} "approve {review_id}"'
    reject_set = f'airflow variables set {variable} "reject {review_id}"'
    what = (
        f"{report.get('write_schema', 'the write schema')} against {report.get('prod_schema', 'production')}"
        f" on {report.get('warehouse', 'the warehouse')}"
    )
    tests = _dbt_tests(report)
    text = [
        escape(f"WAP review {review_id} is open for {dag_id}, run {run_id}: {headline(report)}"),
        *(escape(f"- {line}") for line in relation_lines(report)),
        escape(tests or ""),
        *(
            [escape(f"The review policy ({_policy_source(policy or {})}) did not publish it:")]
            + [escape(f"- {line}") for line in failures]
            if failures
            else []
        ),
        f"Report: {escape(report_url)}",
        f"DAG run: {escape(run_url)}",
        escape(f"To publish, set Variable {variable} to 'approve {review_id}': {approve_set} (or: {approve_command})"),
        escape(f"To reject, set it to 'reject {review_id}': {reject_set} (or: {reject_command})"),
    ]
    blocks = [
        _header(f"WAP review {review_id}: {dag_id}"),
        _section(
            f"A new build of *{escape(dag_id)}* is waiting for review: run {_code(run_id)} "
            f"({escape(what)}).\n*{escape(headline(report))}*" + (f"\n{escape(tests)}" if tests else "")
        ),
        *(
            [
                _section(
                    f"*The review policy* ({_code(_policy_source(policy or {}))}) *did not publish it*: "
                    + "\n".join(f"• {escape(line)}" for line in failures)
                )
            ]
            if failures
            else []
        ),
        _section(_relations_section(report)),
        _section(links),
        _section(
            f"*To publish*, set the Variable {_code(variable)} to {_code(f'approve {review_id}')}:\n"
            f"```{escape(approve_set)}```\nor run {_code(approve_command)}.\n"
            f"*To reject*, set it to {_code(f'reject {review_id}')}: {_code(reject_set, 200)} "
            f"or {_code(reject_command)}."
        ),
        _context(
            f"Review id {_code(review_id)}: approving it approves exactly this report; "
            "any other value keeps the build waiting."
        ),
    ]
    return _message(text, blocks)


def published(
    report: Mapping[str, Any] | None,
    review_id: str,
    *,
    dag_id: str,
    run_id: str,
    run_url: str,
    report_url: str | None = None,
    decided_by: str | None = None,
    announced: Sequence[str] | None = None,
    rules: Sequence[str] | None = None,
) -> SlackMessage:
    """The announcement after the swap: what is production now, which review, approved by whom, and which
    relations were announced to downstream DAGs as Airflow Assets (``announced``; None: not known). Approved by the
    review policy (``decided_by="policy"``): "published by policy" and the ``rules`` that held."""
    report = report or {}
    by_policy = decided_by == POLICY_USER
    if by_policy:
        how, held = "by policy", f" Rules that held: {', '.join(rules)}." if rules else ""
    else:
        how, held = (f"approved by {decided_by}" if decided_by else "approved"), ""
    write_schema = report.get("write_schema", "the write schema")
    prod_schema = report.get("prod_schema", "production")
    what = (
        f"{prod_schema} now holds the build of run {run_id} (audited in {write_schema}); "
        f"the previous production data is in {write_schema}."
    )
    summary = headline(report) if "summary" in report else None
    downstream = None
    if announced is not None:
        downstream = (
            f"Announced to downstream DAGs as Airflow Assets: {', '.join(announced)}"
            if announced
            else "No relation changed: no Asset event, no downstream DAG triggered"
        )
    text = [
        escape(f"WAP published review {review_id} of {dag_id} ({how}): {what}{held}"),
        escape(summary or ""),
        escape(downstream or ""),
        f"Report: {escape(report_url)}" if report_url else "",
        f"DAG run: {escape(run_url)}",
    ]
    links = [_link(run_url, "Open the DAG run")] + ([_link(report_url, "Open the report")] if report_url else [])
    done = "published by policy" if by_policy else f"{escape(how)} and published"
    blocks = [
        _header(f"Published{' by policy' if by_policy else ''}: {dag_id}"),
        _section(
            f"Review {_code(review_id)} was {done}: "
            f"{_code(prod_schema)} now holds the build of run {_code(run_id)}; the previous production data is in "
            f"{_code(write_schema)}.{escape(held)}"
            + (f"\n*{escape(summary)}*" if summary else "")
            + (f"\n{escape(downstream)}" if downstream else "")
        ),
        _section("  ·  ".join(links)),
    ]
    return _message(text, blocks)


def rejected(
    review_id: str,
    *,
    dag_id: str,
    run_id: str,
    run_url: str,
    report_url: str | None = None,
    decision: str = "reject",
    decided_by: str | None = None,
    reason: str | None = None,
    report: Mapping[str, Any] | None = None,
) -> SlackMessage:
    """The announcement of a reject or a timeout (``decision="timeout"``): nothing was published."""
    prod_schema = (report or {}).get("prod_schema", "production")
    if decision == "timeout":
        outcome = "timed out without a decision (treated as a reject)"
    else:
        outcome = f"was rejected{f' by {decided_by}' if decided_by else ''}"
    text = [
        escape(
            f"WAP review {review_id} of {dag_id} (run {run_id}) {outcome}: nothing was published, "
            f"{prod_schema} is unchanged."
        ),
        escape(f"Reason: {truncate(reason, MAX_ERROR_TEXT)}") if reason else "",
        f"Report: {escape(report_url)}" if report_url else "",
        f"DAG run: {escape(run_url)}",
    ]
    links = [_link(run_url, "Open the DAG run")] + ([_link(report_url, "Open the report")] if report_url else [])
    blocks = [
        _header(f"{'Timed out' if decision == 'timeout' else 'Rejected'}: {dag_id}"),
        _section(
            f"Review {_code(review_id)} of run {_code(run_id)} {escape(outcome)}: nothing was published, "
            f"{_code(prod_schema)} is unchanged."
            + (f"\n*Reason*: {escape(truncate(reason, MAX_ERROR_BLOCK))}" if reason else "")
        ),
        _section("  ·  ".join(links)),
    ]
    return _message(text, blocks)


def error_text(exception: BaseException | str | None) -> str:
    """An exception as one readable string: ``Type: message``."""
    if exception is None:
        return "no exception recorded"
    if isinstance(exception, BaseException):
        message = str(exception)
        return f"{type(exception).__name__}: {message}" if message else type(exception).__name__
    return str(exception)


def task_failed(
    *,
    dag_id: str,
    run_id: str,
    task_id: str | None,
    try_number: int | None,
    exception: BaseException | str | None,
    log_url: str | None,
    run_url: str,
) -> SlackMessage:
    """A task of the pipeline failed (after its retries): which one, where its log is, and the error."""
    error = error_text(exception)
    where = f"{dag_id}.{task_id}" if task_id else dag_id
    attempt = f", try {try_number}" if try_number else ""
    text = [
        escape(f"WAP task failed: {where} (run {run_id}{attempt}): {truncate(error, MAX_ERROR_TEXT)}"),
        f"Log: {escape(log_url)}" if log_url else "",
        f"DAG run: {escape(run_url)}",
    ]
    links = ([_link(log_url, "Open the task log")] if log_url else []) + [_link(run_url, "Open the DAG run")]
    code = escape(truncate(error, MAX_ERROR_BLOCK).replace("```", "'''"))
    blocks = [
        _header(f"Task failed: {where}"),
        _section(
            f"Task {_code(task_id or '-')} of *{escape(dag_id)}* failed in run {_code(run_id)}{escape(attempt)}."
            f"\n```{code}```"
        ),
        _section("  ·  ".join(links)),
    ]
    return _message(text, blocks)
