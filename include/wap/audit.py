"""The Audit stage: diff the write schema against production, bind a review id, mark the audited build."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from wap.dbt_manifest import load_primary_keys
from wap.diff.engine import DiffEngine
from wap.diff.markdown import render_markdown
from wap.diff.report import build_report, review_id

if TYPE_CHECKING:
    from wap.config import WapConfig

log = logging.getLogger(__name__)

#: Relations of the bundle's own in the write schema; never part of the diff.
MARKER_TABLE = "_wap_marker"
INTERNAL_PREFIX = "_wap_"


def diff_report(
    config: WapConfig,
    *,
    run_id: str,
    dbt_tests: Sequence[dict[str, Any]] = (),
    write_schema: str | None = None,
    prod_schema: str | None = None,
) -> dict[str, Any]:
    """The report of ``write_schema`` (default: the configured one) against ``prod_schema``."""
    from wap.warehouse import open_warehouse

    write_schema = write_schema or config.write_schema
    prod_schema = prod_schema or config.prod_schema
    warehouse = open_warehouse(config)
    keys = load_primary_keys(config.dbt_manifest_path)
    with warehouse.session(read_only=True) as query:
        engine = DiffEngine(
            query, warehouse.dialect, write_schema, prod_schema, keys=keys, sample_rows=config.sample_rows
        )
        relations = [entry for entry in engine.diff() if not entry["name"].lower().startswith(INTERNAL_PREFIX)]
        safety = swap_safety(query, warehouse.dialect, write_schema)
    if hasattr(warehouse, "schema_findings"):  # Snowflake: grants and properties travel with the swap
        safety += warehouse.schema_findings()
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


def swap_safety(query: Any, dialect: Any, write_schema: str) -> list[dict[str, str]]:
    """What would go wrong if the write schema became production by a swap (publish enforces the blocks).

    Now: a view whose definition names the write schema would read the old data after the swap (block).
    """
    from wap.publish import views_naming

    return [
        {
            "check": "view_names_write_schema",
            "severity": "block",
            "relation": name,
            "message": f"view {name} names {write_schema}: after the swap it would read the previous production",
        }
        for name in views_naming(query, dialect, write_schema)
    ]


def run_audit(config: WapConfig, *, run_id: str, dbt_tests: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """Diff, compute the review id, write the marker into the write schema; returns the report with its id.

    The returned dict is the report plus ``review_id``; the id is computed over the report without it.
    """
    from wap.warehouse import open_warehouse

    report = diff_report(config, run_id=run_id, dbt_tests=dbt_tests)
    rid = review_id(run_id, report)
    # One row for the build as a whole (relation "*"), one per relation of the write schema.
    fingerprints = [("*", None, None)] + [
        (entry["name"], entry["rows"]["after"], entry.get("content_hash_after"))
        for entry in report["relations"]
        if entry["status"] != "removed"
    ]
    open_warehouse(config).write_marker(run_id=run_id, review_id=rid, fingerprints=fingerprints)
    log.info("Audit of run %s: review %s\n%s", run_id, rid, render_markdown(report, rid))
    return {**report, "review_id": rid}
