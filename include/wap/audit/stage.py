"""The Audit stage: diff the write schema against production, bind a review id, mark the audited build."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from wap.audit.dialect import dialect_of
from wap.audit.engine import DiffEngine
from wap.audit.markdown import render_markdown
from wap.audit.marker import INTERNAL_PREFIX, write_marker
from wap.audit.report import build_report, review_id
from wap.audit.swap_safety import schema_findings, view_findings
from wap.dbt.manifest import load_primary_keys
from wap.dbt.project import prepared_project
from wap.warehouse import open_warehouse

if TYPE_CHECKING:
    from wap.config import WapConfig

log = logging.getLogger(__name__)


def diff_report(
    config: WapConfig,
    *,
    run_id: str,
    dbt_tests: Sequence[dict[str, Any]] = (),
    write_schema: str | None = None,
    prod_schema: str | None = None,
) -> dict[str, Any]:
    """The report of ``write_schema`` (default: the configured one) against ``prod_schema``."""
    write_schema = write_schema or config.write_schema
    prod_schema = prod_schema or config.prod_schema
    warehouse = open_warehouse(config)
    dialect = dialect_of(warehouse)
    keys = load_primary_keys(prepared_project(config).manifest_path)
    with warehouse.session(read_only=True) as query:
        engine = DiffEngine(query, dialect, write_schema, prod_schema, keys=keys, sample_rows=config.sample_rows)
        relations = [entry for entry in engine.diff() if not entry["name"].lower().startswith(INTERNAL_PREFIX)]
        safety = view_findings(query, dialect, write_schema)
    if warehouse.kind == "snowflake":  # grants and properties travel with Snowflake's swap
        safety += schema_findings(warehouse)
    return build_report(
        dag_id=config.dag_id,
        run_id=run_id,
        warehouse=config.warehouse,
        write_schema=write_schema,
        prod_schema=prod_schema,
        relations=relations,
        dbt_tests=dbt_tests,
        swap_safety=safety,
    )


def run_audit(config: WapConfig, *, run_id: str, dbt_tests: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """Diff, compute the review id, write the marker into the write schema; returns the report with its id.

    The returned dict is the report plus ``review_id``; the id is computed over the report without it.
    """
    report = diff_report(config, run_id=run_id, dbt_tests=dbt_tests)
    rid = review_id(run_id, report)
    # One row for the build as a whole (relation "*"), one per relation of the write schema.
    fingerprints = [("*", None, None)] + [
        (entry["name"], entry["rows"]["after"], entry.get("content_hash_after"))
        for entry in report["relations"]
        if entry["status"] != "removed"
    ]
    write_marker(open_warehouse(config), run_id=run_id, review_id=rid, fingerprints=fingerprints)
    log.info("Audit of run %s: review %s\n%s", run_id, rid, render_markdown(report, rid))
    return {**report, "review_id": rid}
