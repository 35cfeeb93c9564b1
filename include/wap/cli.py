"""The `wap` command: the reviewer's `diff`, `status`, `approve` and `reject`, and set-up helpers."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from wap.config import PROJECT_DIR, WapError, load_config
from wap.local.landing import FIRST_YEAR, LAST_YEAR, PRODUCTION_THROUGH

if TYPE_CHECKING:
    from wap.approval.reviews import Review


def _settings_apply(args: argparse.Namespace) -> int:
    from wap.local.settings import apply_settings_file

    applied = apply_settings_file(Path(args.file))
    print(
        f"Applied {args.file}: {len(applied.connections)} connection(s), {len(applied.pools)} pool(s), "
        f"{len(applied.variables)} variable(s)"
    )
    return 0


def _landing_load(args: argparse.Namespace) -> int:
    from wap.local.landing import generate_rows, load_landing
    from wap.warehouse.duckdb import DuckDBWarehouse

    config = load_config()
    if config.warehouse != "duckdb":
        raise WapError("the demo landing data is for the embedded warehouse only (WAP_WAREHOUSE=duckdb)")
    rows = generate_rows(args.first, args.through, without_regions=args.without_region or ())
    written = load_landing(DuckDBWarehouse(config), rows)
    left_out = f" without {', '.join(args.without_region)}" if args.without_region else ""
    print(f"Loaded {written} landing rows for {args.first}..{args.through}{left_out} into {config.duckdb_path}")
    return 0


def _demo_reset(args: argparse.Namespace) -> int:
    from wap.local.demo import reset_demo_warehouse

    config = load_config()
    reset_demo_warehouse(config)
    print(
        f"Demo warehouse {config.duckdb_path}: {config.prod_schema} built from landing data through "
        f"{PRODUCTION_THROUGH}; the {LAST_YEAR} load is in landing, waiting for wap_dwh"
    )
    return 0


def _dbt_prepare(args: argparse.Namespace) -> int:
    from wap.dbt.prepare import prepare

    config = load_config()
    project = prepare(config)
    print(f"dbt project {project.name} ({config.dbt_project_dir}): prepared in {project.path}, manifest parsed")
    return 0


def _dbt_profiles(args: argparse.Namespace) -> int:
    from wap.dbt.prepare import profiles_dir
    from wap.dbt.profiles import write_profiles
    from wap.dbt.project import read_project

    config = load_config()
    print(write_profiles(config, read_project(config.dbt_project_dir), profiles_dir(config)).parent)
    return 0


def _cycle(args: argparse.Namespace) -> int:
    import json

    from wap.local.cycle import cycle

    try:
        conf = json.loads(args.conf) if args.conf else None
    except json.JSONDecodeError as error:
        raise WapError(f"--conf is not JSON: {error}") from None
    if conf is not None and not isinstance(conf, dict):
        raise WapError(f"--conf must be a JSON object, not {args.conf!r}")
    return cycle(args.decision, as_json=args.json, conf=conf)


def _diff(args: argparse.Namespace) -> int:
    import json

    from wap.audit.markdown import render_markdown
    from wap.audit.stage import diff_report
    from wap.config import validate_identifier

    config = load_config()
    write_schema = validate_identifier(args.dev or config.write_schema, "--dev")
    prod_schema = validate_identifier(args.prod or config.prod_schema, "--prod")
    report = diff_report(config, run_id="adhoc", write_schema=write_schema, prod_schema=prod_schema)
    if args.format == "json":
        print(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    else:
        print(render_markdown(report), end="")
    return 0


def _series(args: argparse.Namespace) -> int:
    from wap.local.demo import PUBLISHED_TABLE, period_counts

    config = load_config()
    print(f"Rows per year of {PUBLISHED_TABLE}:")
    for schema in (config.write_schema, config.prod_schema):
        counts = period_counts(config, schema, PUBLISHED_TABLE, "tid")
        shown = ", ".join(f"{period}: {rows}" for period, rows in counts) or "(no table)"
        last = f" -> ends {counts[-1][0]}" if counts else ""
        print(f"  {schema:<12} {shown}{last}")
    return 0


def _links(dag_id: str, run_id: str) -> tuple[str, str]:
    """The review view and the DAG run in the Airflow UI, under its configured base URL."""
    from urllib.parse import quote

    from airflow.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")
    return f"{base}/wap/reviews/{quote(dag_id)}/{quote(run_id, safe='')}", f"{base}/dags/{dag_id}/runs/{run_id}"


def _status(args: argparse.Namespace) -> int:
    from airflow.utils.session import create_session

    from wap.approval.reviews import describe, list_reviews, variable_value

    config = load_config()
    with create_session() as session:
        reviews = [review for review in list_reviews(config.dag_id, session=session) if review.review_id]
    value = variable_value(config.approval_variable)
    review = next((review for review in reviews if review.is_open), reviews[0] if reviews else None)
    print(f"{config.approval_variable} = {value!r}")
    if review is None:
        print(f"No review of {config.dag_id} yet ({describe(value, None)})")
        return 0
    report_link, run_link = _links(review.dag_id, review.run_id)
    print(f"Review {review.review_id}: {review.state}  (run {review.run_id}, {review.run_state})")
    print(f"  {describe(value, review)}")
    if review.decision:
        by = review.decision.get("decided_by")
        print(f"  decision: {review.decision.get('decision')}{f' by {by}' if by else ''}")
    print(f"  report: {report_link}\n  run:    {run_link}")
    if review.is_open:
        print(
            f"  to publish: wap approve {review.review_id}   (or: airflow variables set "
            f"{config.approval_variable} 'approve {review.review_id}')"
        )
    for line in _policy_lines(review):
        print(line)
    return 0


def _policy_lines(review: Review) -> list[str]:
    """The review policy's verdict and, per relation, this cycle beside the recent ones (``wap status``)."""
    from wap.policy import rule_lines
    from wap.ui.series import new_cycles, relation_series, sparkline

    policy = review.policy or {}
    verdict = policy.get("verdict")
    lines = []
    if verdict and verdict.get("publish"):
        lines.append(f"  review policy ({verdict['source']}): published by policy, every rule held:")
    elif verdict:
        lines.append(f"  review policy ({verdict['source']}): waits for a reviewer")
        if verdict.get("error"):
            lines.append(f"    {verdict['error']}")
    elif policy:
        lines.append("  review policy: none (every cycle waits for a reviewer)")
    if verdict:
        lines += [f"    {line}" for line in rule_lines(verdict)]
    history = policy.get("history") or {}
    cycles = history.get("cycles") or []
    relations = [entry["name"] for entry in (review.report or {}).get("relations") or []]
    if len(cycles) >= 2 and relations:
        lines.append(
            f"  the last {len(cycles) - 1} cycles and this one (oldest first), rows added / removed / changed:"
        )
        width = max(len(name) for name in relations)
        for name in relations:
            series = relation_series(history, name) or {}
            now = [(series.get(figure) or [None])[-1] for figure in ("added", "removed", "changed")]
            first = new_cycles(series)
            shown = "  ".join(sparkline(series.get(figure) or [], first) for figure in ("added", "removed", "changed"))
            figures = " / ".join("-" if value is None else f"{value:,}" for value in now)
            lines.append(f"    {name:<{width}}  {shown}  now {figures}")
            lines += [f"    {'':<{width}}  unusual: {flag}" for flag in (policy.get("unusual") or {}).get(name, [])]
    return lines


def _decide(args: argparse.Namespace) -> int:
    from airflow.utils.session import create_session

    from wap.approval.reviews import decide

    config = load_config()
    with create_session() as session:
        value = decide(config.approval_variable, config.dag_id, args.verb, args.review_id, session=session)
    print(f"Set {config.approval_variable} = {value!r}; await_approval picks it up within its poke interval")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wap", description="Write-Audit-Publish for dbt with Airflow.")
    commands = parser.add_subparsers(dest="command", required=True)

    settings = commands.add_parser("settings", help="Airflow settings (airflow_settings.yaml)")
    settings_commands = settings.add_subparsers(dest="action", required=True)
    apply = settings_commands.add_parser("apply", help="apply connections, pools and variables to local Airflow")
    apply.add_argument("--file", default=str(PROJECT_DIR / "airflow_settings.yaml"))
    apply.set_defaults(handler=_settings_apply)

    landing = commands.add_parser("landing", help="the demo landing data (embedded warehouse)")
    landing_commands = landing.add_subparsers(dest="action", required=True)
    load = landing_commands.add_parser("load", help="load (or reload) the demo landing data for a range of years")
    load.add_argument("--from", dest="first", type=int, default=FIRST_YEAR)
    load.add_argument("--through", type=int, default=LAST_YEAR)
    load.add_argument(
        "--without-region", action="append", metavar="REGION", help="leave out a region's rows (repeatable)"
    )
    load.set_defaults(handler=_landing_load)

    dbt = commands.add_parser("dbt", help="the dbt project (WAP_DBT_PROJECT_DIR)")
    dbt_commands = dbt.add_subparsers(dest="action", required=True)
    prepare = dbt_commands.add_parser(
        "prepare", help="write the bundle's profile, install the project's packages, parse it, check it"
    )
    prepare.set_defaults(handler=_dbt_prepare)
    profiles = dbt_commands.add_parser(
        "profiles", help="write the profile the bundle supplies and print its directory (for dbt by hand)"
    )
    profiles.set_defaults(handler=_dbt_profiles)

    diff = commands.add_parser("diff", help="diff the write schema against production, in the warehouse")
    diff.add_argument("--dev", help="the new build's schema (default: WAP_WRITE_SCHEMA)")
    diff.add_argument("--prod", help="the production schema (default: WAP_PROD_SCHEMA)")
    output = diff.add_mutually_exclusive_group()
    output.add_argument("--json", dest="format", action="store_const", const="json", help="the report as JSON")
    output.add_argument("--markdown", dest="format", action="store_const", const="markdown", help="(default)")
    diff.set_defaults(handler=_diff, format="markdown")

    demo = commands.add_parser("demo", help="the demo warehouse")
    demo_commands = demo.add_subparsers(dest="action", required=True)
    reset = demo_commands.add_parser("reset", help="recreate it: production through 2021, the 2022 load in landing")
    reset.set_defaults(handler=_demo_reset)

    cycle = commands.add_parser(
        "cycle",
        help="one WAP cycle of the configured dbt project on the local Airflow components, decided as told",
    )
    cycle.add_argument(
        "--decision",
        choices=["approve", "reject", "none"],
        required=True,
        help="what the reviewer does (none: someone else decides, in the view or with `wap approve`)",
    )
    cycle.add_argument(
        "--json", action="store_true", help="end with one JSON line: outcome, run_id, review_id, seconds"
    )
    cycle.add_argument("--conf", help="the run's conf, as JSON (e.g. '{\"full_refresh\": true}')")
    cycle.set_defaults(handler=_cycle)

    status = commands.add_parser("status", help="the open review (or the latest): id, state, links")
    status.set_defaults(handler=_status)
    for verb, text in (("approve", "publish"), ("reject", "not publish")):
        decision = commands.add_parser(verb, help=f"{verb} the open review: {text} exactly the report it names")
        decision.add_argument("review_id", help="the review id from the audit (12 hex characters)")
        decision.set_defaults(handler=_decide, verb=verb)

    series = commands.add_parser("series", help="rows per year of the published table in both schemas")
    series.set_defaults(handler=_series)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Airflow (imported lazily by the commands) logs at INFO to stdout; the CLI prints its own results.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except (WapError, ValueError) as error:
        print(f"wap: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
