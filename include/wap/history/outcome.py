"""How a review ended, recorded in the audit history by the task that ended it (approve by policy, publish,
rollback). Recording never fails the task: the swap or the decision it records has happened already."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from wap.history.table import AuditHistory
from wap.warehouse import open_warehouse

if TYPE_CHECKING:
    from wap.config import WapConfig

log = logging.getLogger(__name__)


def history_of(config: WapConfig) -> AuditHistory:
    """The configured warehouse's audit history (``WAP_HISTORY_SCHEMA``, kept for ``WAP_HISTORY_CYCLES``)."""
    return AuditHistory(open_warehouse(config), config.history_schema, config.history_cycles)


def record_outcome(
    config: WapConfig,
    run_id: str,
    outcome: str,
    *,
    decided_by: str | None = None,
    rules: Sequence[str] | None = None,
) -> bool:
    """Set the outcome of ``run_id``'s rows; False (and a warning in the task log) when the history cannot be
    written."""
    try:
        history_of(config).set_outcome(config.dag_id, run_id, outcome, decided_by=decided_by, rules=rules)
    except Exception as problem:  # any driver's error: the history is a record, never a gate
        log.warning("Cannot record %r for run %s in the audit history: %s", outcome, run_id, problem)
        return False
    log.info("Audit history: run %s %s%s", run_id, outcome, f" (decided by {decided_by})" if decided_by else "")
    return True
