"""The report as Markdown: for the task log, the XCom reader and Slack."""

from __future__ import annotations

from typing import Any

from wap.audit.report import headline

_MAX_CELL = 40


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _cell(value: Any) -> str:
    text = "NULL" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return lines


def _samples(title: str, rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    columns = list(rows[0])
    return [f"*{title}*", "", *_table(columns, [[row.get(c) for c in columns] for row in rows]), ""]


def _relation(entry: dict[str, Any]) -> list[str]:
    rows = entry["rows"]
    lines = [f"### {entry['name']} ({entry['kind']}): {entry['status']}", ""]
    method = {"key": f"by key ({', '.join(entry['key'] or [])})", "multiset": "as a multiset of rows"}
    if entry["diff_method"] in method:
        lines.append(f"Compared {method[entry['diff_method']]}.")
    if entry["duplicate_keys"]:
        lines.append(f"**Key {', '.join(entry['key'])} has duplicates**: compared as a multiset instead.")
    if entry.get("kind_before") and entry["kind_before"] != entry["kind"]:
        lines.append(f"Kind changed: {entry['kind_before']} -> {entry['kind']}.")
    lines += [
        f"Rows: {_n(rows['before'])} -> {_n(rows['after'])}; added {_n(rows['added'])}, "
        f"removed {_n(rows['removed'])}, changed {_n(rows['changed'])}.",
        "",
    ]
    columns = entry["columns"]
    changes = (
        [[f"+ {c['name']}", c["type"]] for c in columns["added"]]
        + [[f"- {c['name']}", c["type"]] for c in columns["removed"]]
        + [[f"~ {c['name']}", f"{c['before']} -> {c['after']}"] for c in columns["type_changed"]]
    )
    if changes:
        lines += ["Schema changes:", "", *_table(["column", "type"], changes), ""]
    changed_columns = {c: n for c, n in entry["column_changes"].items() if n}
    if changed_columns:
        lines += [
            "Values changed per column:",
            "",
            *_table(["column", "rows"], [[c, _n(n)] for c, n in changed_columns.items()]),
            "",
        ]
    samples = entry["samples"]
    lines += _samples("Sample added rows", samples["added"])
    lines += _samples("Sample removed rows", samples["removed"])
    changed = [{"": side, **pair[side]} for pair in samples["changed"] for side in ("before", "after")]
    lines += _samples("Sample changed rows (before/after)", changed)
    for period in entry["periods"]:
        counts = [
            [p["period"], _n(p["before"]), _n(p["after"]), f"{p['after'] - p['before']:+,}"] for p in period["counts"]
        ]
        before, after = period["before"], period["after"]
        span = (
            f"{before['min']}..{before['max']}" if before else "none",
            f"{after['min']}..{after['max']}" if after else "none",
        )
        lines += [
            f"Rows per {period['grain']} of `{period['column']}` (before {span[0]}, after {span[1]}):",
            "",
            *_table([period["grain"], "before", "after", "change"], counts),
            "",
        ]
    return lines


def render_markdown(report: dict[str, Any], review_id: str | None = None) -> str:
    lines = [f"## WAP audit: {report['write_schema']} vs {report['prod_schema']}", ""]
    if review_id:
        lines += [f"Review `{review_id}` of run `{report['run_id']}`.", ""]
    lines += [headline(report), ""]
    overview = [
        [
            e["name"],
            e["kind"],
            e["status"],
            _n(e["rows"]["before"]),
            _n(e["rows"]["after"]),
            _n(e["rows"]["added"]),
            _n(e["rows"]["removed"]),
            _n(e["rows"]["changed"]),
        ]
        for e in report["relations"]
    ]
    lines += [*_table(["relation", "kind", "status", "before", "after", "added", "removed", "changed"], overview), ""]
    findings = report.get("swap_safety") or []
    if findings:
        lines += ["Swap safety:", ""] + [f"- **{f['severity']}**: {f['message']}" for f in findings] + [""]
    else:
        lines += ["Swap safety: no finding (no view in the write schema names it).", ""]
    if report["dbt_tests"]:
        tests = [[t["model"], t["passed"], t["failed"], t["warned"]] for t in report["dbt_tests"]]
        lines += ["dbt tests of the build:", "", *_table(["model", "passed", "failed", "warned"], tests), ""]
    for entry in report["relations"]:
        if entry["status"] != "unchanged":
            lines += _relation(entry)
    return "\n".join(lines).rstrip() + "\n"
