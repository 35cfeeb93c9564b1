"""The audit history: each audit's headline figures per relation, in a table of the bundle's own.

The table (:mod:`wap.history.table`) lives in a schema outside the two that publish swaps, so it survives publishes
and rollbacks; it keeps a configurable number of cycles per DAG. The audit records its rows
(:func:`cycle_rows` -> :meth:`AuditHistory.record_audit`) and reads the recent published cycles for the review
policy (:meth:`AuditHistory.recent`); publish and rollback set each run's outcome (:meth:`AuditHistory.set_outcome`);
the review page shows :func:`display_series`.
"""

from __future__ import annotations

from wap.history.rows import cycle_rows, display_series
from wap.history.table import HISTORY_TABLE, OUTCOMES, AuditHistory

__all__ = ["HISTORY_TABLE", "OUTCOMES", "AuditHistory", "cycle_rows", "display_series"]
