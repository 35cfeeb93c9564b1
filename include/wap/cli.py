"""The `wap` command: set-up helpers now; `wap diff/status/approve/reject` join as the pipeline grows."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from wap.config import PROJECT_DIR, WapError, load_config
from wap.landing import FIRST_YEAR, LAST_YEAR, PRODUCTION_THROUGH

PUBLISHED_TABLE = "sysselsetting_forholdstall"


def _settings_apply(args: argparse.Namespace) -> int:
    from wap.airflow_settings import apply_settings_file

    applied = apply_settings_file(Path(args.file))
    print(
        f"Applied {args.file}: {len(applied.connections)} connection(s), {len(applied.pools)} pool(s), "
        f"{len(applied.variables)} variable(s)"
    )
    return 0


def _landing_load(args: argparse.Namespace) -> int:
    from wap.landing import generate_rows
    from wap.warehouse import open_warehouse

    config = load_config()
    written = open_warehouse(config).load_landing(generate_rows(args.first, args.through))
    print(f"Loaded {written} landing rows for {args.first}..{args.through} into {config.duckdb_path}")
    return 0


def _demo_reset(args: argparse.Namespace) -> int:
    from wap.demo import reset_demo_warehouse

    config = load_config()
    reset_demo_warehouse(config)
    print(
        f"Demo warehouse {config.duckdb_path}: {config.prod_schema} built from landing data through "
        f"{PRODUCTION_THROUGH}; the {LAST_YEAR} load is in landing, waiting for wap_dwh"
    )
    return 0


def _diff(args: argparse.Namespace) -> int:
    import json

    from wap.audit import diff_report
    from wap.config import validate_identifier
    from wap.diff.markdown import render_markdown

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
    from wap.warehouse import open_warehouse

    config = load_config()
    warehouse = open_warehouse(config)
    print(f"Rows per year of {PUBLISHED_TABLE}:")
    for schema in (config.write_schema, config.prod_schema):
        counts = warehouse.period_counts(schema, PUBLISHED_TABLE, "tid")
        shown = ", ".join(f"{period}: {rows}" for period, rows in counts) or "(no table)"
        last = f" -> ends {counts[-1][0]}" if counts else ""
        print(f"  {schema:<12} {shown}{last}")
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
    load.set_defaults(handler=_landing_load)

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
