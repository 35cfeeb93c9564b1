"""The audit history table on the warehouse: ``<schema>.audit_history``, one row per relation per audited cycle.

The schema (default ``wap_history``) is the bundle's own and neither of the two schemas a publish swaps, so
publishes and rollbacks leave the table as it is. It is created on first use. Timestamps are UTC without a zone
(``TIMESTAMP`` on DuckDB, ``TIMESTAMP_NTZ`` on Snowflake) and come back as ISO 8601 text with ``+00:00``.

Identifiers: the validated schema and the fixed table name, quoted through :mod:`wap.audit.dialect`; every value
is a bound parameter.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from wap.audit.dialect import SnowflakeDialect, dialect_of, quote
from wap.config import ConfigError, validate_identifier
from wap.warehouse.duckdb import query_of

if TYPE_CHECKING:
    from wap.warehouse import Query

log = logging.getLogger(__name__)

HISTORY_TABLE = "audit_history"
#: ``open``: audited, a review is open; ``approved``: not yet published; ``not published``: the review ended
#: without a publish (rejected, timed out, failed, or a later audit of the DAG started); ``rolled back``: published,
#: then withdrawn by a rollback.
OUTCOMES = ("open", "approved", "published", "not published", "rolled back")
#: Outcomes of a review still under way: the next audit of the same DAG ends them as ``not published``.
PENDING = ("open", "approved")
#: Rows per ``INSERT`` statement (20 values each).
INSERT_BATCH = 200

#: The table's columns and their types; ``timestamp`` is UTC without a zone (see :meth:`AuditHistory._ddl_type`).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("dag_id", "varchar"),
    ("run_id", "varchar"),
    ("review_id", "varchar"),
    ("audited_at", "timestamp"),
    ("relation", "varchar"),
    ("status", "varchar"),
    ("rows_before", "bigint"),
    ("rows_after", "bigint"),
    ("rows_added", "bigint"),
    ("rows_removed", "bigint"),
    ("rows_changed", "bigint"),
    ("columns_added", "int"),
    ("columns_removed", "int"),
    ("columns_retyped", "int"),
    ("tests_warned", "int"),
    ("tests_failed", "int"),
    ("outcome", "varchar"),
    ("decided_by", "varchar"),
    ("decided_at", "timestamp"),
    ("rules", "varchar"),
)
COLUMN_NAMES = tuple(name for name, _ in COLUMNS)
_TIMESTAMPS = frozenset(name for name, kind in COLUMNS if kind == "timestamp")
_INTEGERS = frozenset(name for name, kind in COLUMNS if kind in ("bigint", "int"))
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class AuditHistory:
    """The audit history of ``warehouse`` (a :mod:`wap.warehouse` connection), kept for ``keep_cycles`` runs of
    each DAG."""

    def __init__(self, warehouse: Any, schema: str = "wap_history", keep_cycles: int = 60) -> None:
        self.warehouse = warehouse
        self.schema = validate_identifier(schema, "WAP_HISTORY_SCHEMA")
        config = warehouse.config
        if schema.lower() in (config.write_schema.lower(), config.prod_schema.lower()):
            raise ConfigError(
                f"WAP_HISTORY_SCHEMA={schema!r} is a schema that publish swaps: the history needs one of its own"
            )
        if isinstance(keep_cycles, bool) or not isinstance(keep_cycles, int) or keep_cycles < 1:
            raise ConfigError(f"WAP_HISTORY_CYCLES={keep_cycles!r} is not a positive whole number of cycles")
        self.keep_cycles = keep_cycles
        self.dialect = dialect_of(warehouse)
        if warehouse.kind == "snowflake":
            self.schema_sql = SnowflakeDialect.qualified(warehouse.database, schema)
            self.table = SnowflakeDialect.qualified(warehouse.database, schema, HISTORY_TABLE)
        else:
            self.schema_sql = quote(schema)
            self.table = self.dialect.relation(schema, HISTORY_TABLE)

    # -- writing ----------------------------------------------------------------------------------------------------

    def record_audit(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Record the rows of one audited run (:func:`wap.history.rows.cycle_rows`), in one transaction.

        A retried audit replaces its run's rows; earlier runs of the DAG still ``open`` or ``approved`` end as
        ``not published``; then only the newest ``keep_cycles`` runs of the DAG are kept.
        """
        rows = list(rows)
        if not rows:
            log.info("No relations audited: nothing to record in %s", self.table)
            return
        runs = {(row["dag_id"], row["run_id"]) for row in rows}
        if len(runs) != 1:
            raise ValueError(f"record_audit records one run at a time, got {sorted(runs)}")
        ((dag_id, run_id),) = runs
        values = [self._values(row) for row in rows]
        now = _utc_naive(datetime.now(timezone.utc))
        p = self.dialect.placeholder
        pending = ", ".join(p for _ in PENDING)
        with self._writing(create=True) as query:
            query(f"delete from {self.table} where dag_id = {p} and run_id = {p}", [dag_id, run_id])
            query(
                f"update {self.table} set outcome = {p}, decided_at = {self._timestamp()} "
                f"where dag_id = {p} and run_id <> {p} and outcome in ({pending})",
                ["not published", now, dag_id, run_id, *PENDING],
            )
            row_marks = "(" + ", ".join(p for _ in COLUMNS) + ")"
            for start in range(0, len(values), INSERT_BATCH):
                batch = values[start : start + INSERT_BATCH]
                query(
                    f"insert into {self.table} ({', '.join(COLUMN_NAMES)}) "
                    f"values {', '.join(row_marks for _ in batch)}",
                    [value for row in batch for value in row],
                )
            query(
                f"delete from {self.table} where dag_id = {p} and run_id not in "
                f"(select run_id from ({self._newest_runs(f'dag_id = {p}', self.keep_cycles)}) kept)",
                [dag_id, dag_id],
            )
        log.info("Recorded %d relation(s) of run %s of %s in %s", len(values), run_id, dag_id, self.table)

    def set_outcome(
        self,
        dag_id: str,
        run_id: str,
        outcome: str,
        *,
        decided_by: str | None = None,
        rules: Sequence[str] | None = None,
    ) -> int:
        """Set the outcome of a run's rows; returns how many rows the run has (0: none recorded, or no table).

        ``decided_at`` becomes now when the outcome changes; ``decided_by`` and ``rules`` (JSON text of the rule
        names that held) replace the earlier ones when given. Setting the same outcome again changes nothing.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome {outcome!r} is not one of {OUTCOMES}")
        if isinstance(rules, str):
            raise TypeError("rules is a sequence of rule names, not one string")
        if not self._may_exist():
            return 0
        p = self.dialect.placeholder
        now = _utc_naive(datetime.now(timezone.utc))
        rules_text = None if rules is None else json.dumps(list(rules))
        with self._writing(create=False) as query:
            if not self._exists(query):
                return 0
            ((count,),) = query(
                f"select count(*) from {self.table} where dag_id = {p} and run_id = {p}", [dag_id, run_id]
            )
            if count:
                query(
                    f"update {self.table} set decided_at = case when outcome = {p} then decided_at "
                    f"else {self._timestamp()} end, "
                    f"outcome = {p}, decided_by = coalesce({p}, decided_by), rules = coalesce({p}, rules) "
                    f"where dag_id = {p} and run_id = {p}",
                    [outcome, now, outcome, decided_by, rules_text, dag_id, run_id],
                )
        log.info("Run %s of %s: outcome %s (%d row(s))", run_id, dag_id, outcome, count)
        return int(count)

    # -- reading ----------------------------------------------------------------------------------------------------

    def recent(
        self,
        dag_id: str,
        *,
        cycles: int,
        exclude_run_id: str | None = None,
        outcomes: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """The rows of the newest ``cycles`` runs of ``dag_id`` (by their audit time), newest run first, each run's
        relations by name. ``outcomes``: only runs with one of these outcomes; ``exclude_run_id``: leave out a run
        (the one under review). A fresh warehouse, without the table, has none."""
        if isinstance(outcomes, str):
            raise TypeError("outcomes is a sequence of outcomes, not one string")
        if cycles < 1 or (outcomes is not None and not outcomes) or not self._may_exist():
            return []
        p = self.dialect.placeholder

        def where(prefix: str) -> tuple[str, list[Any]]:
            condition, params = f"{prefix}dag_id = {p}", [dag_id]
            if exclude_run_id is not None:
                condition += f" and {prefix}run_id <> {p}"
                params.append(exclude_run_id)
            if outcomes is not None:
                condition += f" and {prefix}outcome in ({', '.join(p for _ in outcomes)})"
                params.extend(outcomes)
            return condition, params

        inner, inner_params = where("")
        outer, outer_params = where("h.")
        columns = [self._read(f"h.{name}") if name in _TIMESTAMPS else f"h.{name}" for name in COLUMN_NAMES]
        sql = (
            f"select {', '.join(columns)} from {self.table} h "
            f"join ({self._newest_runs(inner, cycles)}) c on c.run_id = h.run_id "
            f"where {outer} order by c.cycle_at desc, h.run_id desc, h.relation"
        )
        with self._reading() as query:
            if not self._exists(query):
                return []
            return [_as_dict(row) for row in query(sql, inner_params + outer_params)]

    # -- helpers ----------------------------------------------------------------------------------------------------

    def _newest_runs(self, condition: str, cycles: int) -> str:
        """A query of ``run_id, cycle_at`` (the run's latest audit time): the newest ``cycles`` runs where
        ``condition``."""
        return (
            f"select run_id, max(audited_at) as cycle_at from {self.table} where {condition} "
            f"group by run_id order by cycle_at desc, run_id desc limit {int(cycles)}"
        )

    def _values(self, row: Mapping[str, Any]) -> list[Any]:
        """The bound values of one row, in the order of :data:`COLUMNS`."""
        for name in ("dag_id", "run_id", "relation"):
            if not row.get(name):
                raise ValueError(f"a history row needs a {name}: {dict(row)!r}")
        outcome = row.get("outcome") or "open"
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome {outcome!r} is not one of {OUTCOMES}")
        values = []
        for name in COLUMN_NAMES:
            value = outcome if name == "outcome" else row.get(name)
            if value is not None and name in _TIMESTAMPS:
                value = _utc_naive(value)
            elif value is not None and name in _INTEGERS:
                value = int(value)
            elif name == "rules" and value is not None and not isinstance(value, str):
                value = json.dumps(list(value))
            values.append(value)
        return values

    def _may_exist(self) -> bool:
        """False when the table cannot exist: a DuckDB warehouse whose file was never written (opening it would
        create it, or fail read-only)."""
        return self.warehouse.kind != "duckdb" or self.warehouse.config.duckdb_path.exists()

    def _exists(self, query: Query) -> bool:
        p = self.dialect.placeholder
        ((count,),) = query(
            "select count(*) from information_schema.tables where table_catalog = current_database() "
            f"and lower(table_schema) = {p} and lower(table_name) = {p}",
            [self.schema.lower(), HISTORY_TABLE],
        )
        return bool(count)

    def _create(self, query: Query) -> None:
        columns = ", ".join(f"{name} {self._ddl_type(kind)}" for name, kind in COLUMNS)
        query(f"create schema if not exists {self.schema_sql}", [])
        query(f"create table if not exists {self.table} ({columns})", [])

    def _ddl_type(self, kind: str) -> str:
        return "timestamp_ntz" if kind == "timestamp" and self.dialect.name == "snowflake" else kind

    def _timestamp(self) -> str:
        """A bound timestamp (UTC, no zone), cast: Snowflake's connector binds it as text."""
        return f"cast({self.dialect.placeholder} as {self._ddl_type('timestamp')})"

    def _read(self, column: str) -> str:
        """A timestamp column as read back: on Snowflake its microseconds since the epoch (exact; fakesnow 0.12.1
        returns a NULL timestamp as 1970-01-01 through the connector)."""
        return f"date_part(epoch_microsecond, {column})" if self.dialect.name == "snowflake" else column

    @contextmanager
    def _writing(self, *, create: bool) -> Iterator[Query]:
        """A :data:`~wap.warehouse.Query` in one transaction (the table created first when ``create``): committed
        on exit, rolled back on an error."""
        if self.warehouse.kind == "duckdb":
            with self.warehouse.transaction() as conn:
                query = query_of(conn)
                if create:
                    self._create(query)
                yield query
            return
        with self.warehouse.session() as query:
            if create:
                self._create(query)  # DDL commits on its own on Snowflake: before the transaction
            query("begin transaction", [])
            try:
                yield query
            except BaseException:
                query("rollback", [])
                raise
            query("commit", [])

    @contextmanager
    def _reading(self) -> Iterator[Query]:
        with self.warehouse.session(read_only=True) as query:
            yield query


def _utc_naive(value: datetime | str) -> datetime:
    """A timestamp as the table stores it: UTC without a zone (a naive value is taken as UTC already)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _iso(value: Any) -> str | None:
    """A stored timestamp (UTC) as ISO 8601 text with ``+00:00``."""
    if value is None:
        return None
    if isinstance(value, (int, Decimal)):  # microseconds since the epoch (Snowflake, see AuditHistory._read)
        return (_EPOCH + timedelta(microseconds=int(value))).isoformat()
    return _utc_naive(value).replace(tzinfo=timezone.utc).isoformat()


def _as_dict(row: Sequence[Any]) -> dict[str, Any]:
    record = dict(zip(COLUMN_NAMES, row, strict=True))
    for name in _TIMESTAMPS:
        record[name] = _iso(record[name])
    for name in _INTEGERS:
        if record[name] is not None:
            record[name] = int(record[name])
    return record
