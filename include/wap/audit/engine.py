"""Diff every relation of the write schema against production, in the warehouse.

Python receives aggregates and at most ``sample_rows`` sample rows per kind, so its memory does not grow with
the tables. Per relation pair:

- two tables with a key and different row counts are changed for certain: their counts and the min/max of their
  date/time columns are read in one statement that both warehouses answer from table metadata, then one full
  outer join on the key computes every count and the new side's content hash, and picks the sample keys, whose
  rows are then read by key;
- otherwise one pass over each side computes count, content hash and date ranges (the fast path: equal count
  and hash is "unchanged", no join), and a changed pair gets the keyed join, or a multiset diff where there is
  no usable key (none, or duplicated);
- then rows per period (year, or month for spans under three years) of each date/time column.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from wap.audit import buckets
from wap.audit.dialect import Dialect, quote
from wap.audit.key_ranges import key_ranges, range_filters, sample_positions
from wap.warehouse import Query

log = logging.getLogger(__name__)

_TIME_TYPES = ("DATE", "TIMESTAMP", "DATETIME")

#: Rows per key range of a keyed join over large tables stored in key order (see :mod:`wap.audit.key_ranges`):
#: at 10M rows, four joins of 2.5M rows cost about 20% less than one join (two of 5M: 15%, eight: 20%).
PARTITION_ROWS = 2_500_000

#: Rows from which the periods of a DATE column are counted per day first (:meth:`DiffEngine._period_counts`).
PERIODS_BY_DAY_ROWS = 100_000

#: The field of a sample key that holds its order (the key's hash), by which the samples of several joins merge.
_ORDER = "__wap_order"


@dataclass(frozen=True)
class Relation:
    name: str
    kind: str  # "table" or "view"
    columns: tuple[tuple[str, str], ...]  # (name, type), in table order
    #: A table's row count as the catalog keeps it (None: a view, or unknown): a plan's hint, never a figure of the
    #: report (DuckDB's counts deleted rows until they are vacuumed).
    rows: int | None = field(default=None, compare=False)

    @property
    def column_types(self) -> dict[str, str]:
        return dict(self.columns)


def read_catalog(query: Query, dialect: Dialect, schemas: Sequence[str]) -> dict[str, dict[str, Relation]]:
    """``{schema (as given): {relation name (lower case): Relation}}`` for each of ``schemas``."""
    sql, params = dialect.catalog(schemas)
    by_lower = {schema.lower(): schema for schema in schemas}
    columns: dict[tuple[str, str], list[tuple[str, str]]] = {}
    kinds: dict[tuple[str, str], str] = {}
    names: dict[tuple[str, str], str] = {}
    counts: dict[tuple[str, str], int | None] = {}
    for schema, table, table_type, column, data_type, rows in query(sql, params):
        key = (by_lower[schema.lower()], table.lower())
        names[key] = table
        kinds[key] = "view" if "VIEW" in table_type.upper() else "table"
        counts[key] = None if rows is None or kinds[key] == "view" else int(rows)
        columns.setdefault(key, []).append((column, data_type.upper()))
    catalog: dict[str, dict[str, Relation]] = {schema: {} for schema in schemas}
    for (schema, lower), table in names.items():
        key = (schema, lower)
        catalog[schema][lower] = Relation(table, kinds[key], tuple(columns[key]), counts[key])
    return catalog


@dataclass(frozen=True)
class _OneRow:
    """A query of one row of aggregates over ``source``; ``types``: a label of each value's type (its shape)."""

    select: list[str]
    source: str
    types: tuple[str, ...]


def _is_time(data_type: str) -> bool:
    return data_type.upper().startswith(_TIME_TYPES)


def _time_columns(relation: Relation) -> list[str]:
    return [name for name, data_type in relation.columns if _is_time(data_type)]


def _bounds(columns: Sequence[str]) -> list[str]:
    """``min`` and ``max`` of each of ``columns``, in that order (read back by :func:`_ranges`)."""
    return [f"{function}({quote(column)})" for column in columns for function in ("min", "max")]


def _ranges(columns: Sequence[str], values: Iterator[Any]) -> dict[str, tuple[Any, Any]]:
    """``{column: (min, max)}`` from the values of :func:`_bounds`, taken from ``values``."""
    return {column: (next(values), next(values)) for column in columns}


def _period_label(value: Any, grain: str) -> str:
    """``2022`` or ``2022-03`` from :meth:`~wap.audit.dialect.Dialect.period_key`'s integer."""
    value = int(value)
    return f"{value:04d}" if grain == "year" else f"{value // 100:04d}-{value % 100:02d}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _samples(value: Any, *, plain: bool = False) -> list[Any]:
    """Sample rows arrive as a list (DuckDB) or a JSON array (Snowflake) of JSON texts or objects; ``plain``: of
    plain values (a one-column key's, which may be text that is no JSON: read as they are)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = json.loads(value)
    return list(value) if plain else [_sample_item(item) for item in value]


#: Parts a UNION ALL holds at one level: DuckDB ran 600 one-row parts in 0.39 s as one flat UNION ALL, 0.20 s
#: nested as groups of 25 (and 0.35 s as 600 statements)
UNION_GROUP = 25


def _union_all(parts: Sequence[str]) -> str:
    """``parts`` (queries of one shape) as one UNION ALL, nested in groups of :data:`UNION_GROUP`."""
    if len(parts) <= UNION_GROUP:
        return " union all ".join(parts)
    groups = [_union_all(parts[i : i + UNION_GROUP]) for i in range(0, len(parts), UNION_GROUP)]
    return _union_all([f"select * from ({group}) __wap_u{i}" for i, group in enumerate(groups)])


class _Unaccounted(Exception):
    """The rows a restricted keyed join read do not account for the whole change (:meth:`DiffEngine._keyed_diff`)."""


def _decoded(plan: Any, item: Mapping[str, Any]) -> tuple[int, int, int] | None:
    """The key of a range bucket's one differing row, with its rows on each side, (key, new, production), from
    the differences (new minus production) of the bucket's sums of key times the low bits of the row hash (``km``)
    and of those bits (``m``); None if the bucket may hold more than one differing row.

    One differing row, whether added (one row more), removed (one fewer) or changed (its key on both sides, with
    other low bits): ``km`` is its key times ``m``. The key must fall in the bucket. More differing rows can fit
    these sums by chance; the join of the named keys is checked against the whole change.
    """
    bucket, rows = int(item["b"]), int(item["n"]) - int(item["o"])
    km, m = int(item["km"] or 0), int(item["m"] or 0)
    if bucket == buckets.NULL_BUCKET or rows not in (-1, 0, 1) or m == 0 or km % m != 0:
        return None
    key = km // m
    if plan.bucket_of(key) != bucket:
        return None
    return key, int(rows >= 0), int(rows <= 0)


def _in_order(rows: list[Any], columns: Sequence[str]) -> list[Any]:
    """Sample rows with their fields in table order (Snowflake returns an OBJECT's keys sorted by name)."""
    position = {column: i for i, column in enumerate(columns)}

    def place(item: tuple[str, Any]) -> int:
        return position.get(item[0], len(position))

    return [dict(sorted(row.items(), key=place)) if isinstance(row, dict) else row for row in rows]


def _sample_item(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _one_column_key_of_two_tables(new: Relation, old: Relation, key: Sequence[str]) -> bool:
    """Whether ``key`` is one column and both relations are tables: the keyed join may then be split by key range,
    and pick its sample keys as plain values."""
    return len(key) == 1 and new.kind == old.kind == "table"


def _key_text(value: Mapping[str, Any], key: Sequence[str]) -> str:
    """A key's values as text, equal for the same key whether it came as a struct or as JSON."""
    return json.dumps([_jsonable(value[column]) for column in key], default=str)


class DiffEngine:
    """Builds the per-relation entries of the report for one pair of schemas."""

    def __init__(
        self,
        query: Query,
        dialect: Dialect,
        write_schema: str,
        prod_schema: str,
        keys: Mapping[str, Sequence[str]] | None = None,
        sample_rows: int = 5,
        partition_rows: int = PARTITION_ROWS,
        multiset_by_hash: bool = True,
        multiset_by_presence: bool = True,
        bucket_rows: int = buckets.BUCKET_ROWS,
        max_buckets: int = buckets.MAX_BUCKETS,
        bucket_min_rows: int = buckets.MIN_ROWS,
        joined_share: float = buckets.JOINED_SHARE,
        decode_buckets: str = "probe",
    ) -> None:
        self.query = query
        self.dialect = dialect
        self.write_schema = write_schema
        self.prod_schema = prod_schema
        self.keys = {name.lower(): list(columns) for name, columns in (keys or {}).items()}
        self.sample_rows = sample_rows
        self.partition_rows = partition_rows  # 0: one join, whatever the size
        self.multiset_by_hash = multiset_by_hash  # False: the multiset diff as a join of both sides' distinct rows
        self.multiset_by_presence = multiset_by_presence  # False: by hash as one aggregation of both sides
        self.bucket_rows = bucket_rows  # 0: no bucket fingerprints (:mod:`wap.audit.buckets`)
        self.max_buckets = max_buckets
        self.bucket_min_rows = bucket_min_rows
        self.joined_share = joined_share  # restrict the join when at most this share of buckets differs
        # Whether the bucket pass names the one differing row of a bucket, so that the restricted join reads that
        # row's key only: "probe" (where the key-order probe shows it pays), "always", "never"
        self.decode_buckets = decode_buckets
        #: Per relation diffed by key bucket: (bucket count, buckets joined, ``restricted`` or ``whole``), read by the
        #: bench and logged; not part of the report, which is the same whichever way it was computed.
        self.bucket_stats: dict[str, tuple[int, int, str]] = {}
        # What :meth:`diff` fetched in its batches for the relations' own work, taken out as it is used.
        self._figures_cache: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._stats_cache: dict[tuple[str, str, tuple[str, ...]], dict[str, Any]] = {}
        self._grouping_set = False  # whether the session got :meth:`Dialect.grouping_settings`

    # -- the whole diff -------------------------------------------------------------------------------------
    def diff(self) -> list[dict[str, Any]]:
        """Every relation's entry. The statements that every relation needs are batched, so that an audit of many
        unchanged relations sends a constant number of them: the catalog; the table figures (metadata) of every
        pair that asks for them, in one statement; the per-side pass of every side that needs one, in one statement;
        then each relation's own work (joins, bucket passes, samples: only for relations that are large or changed);
        and the period counts of all relations, in one statement."""
        catalog = read_catalog(self.query, self.dialect, [self.write_schema, self.prod_schema])
        new, old = catalog[self.write_schema], catalog[self.prod_schema]
        pairs = [(new.get(lower), old.get(lower)) for lower in sorted(set(new) | set(old))]
        self._figures_cache.clear()
        self._stats_cache.clear()
        self._prefetch_figures(pairs)
        self._prefetch_stats(pairs)
        compared = [self._diff_pair(n, o) for n, o in pairs]
        self._fill_periods(compared)
        return [entry for entry, *_ in compared]

    def diff_relation(self, new: Relation | None, old: Relation | None) -> dict[str, Any]:
        """One relation's entry (its statements unbatched)."""
        compared = [self._diff_pair(new, old)]
        self._fill_periods(compared)
        return compared[0][0]

    # -- batches --------------------------------------------------------------------------------------------
    def _single_rows(self, queries: Sequence[_OneRow]) -> list[list[Any]]:
        """The one row of each of ``queries`` (aggregates over one relation), in one statement per shape of row (the
        types of its values): a UNION ALL of the queries of that shape, each row tagged with its query's position.
        A project's relations have a few shapes (their date/time columns' types), whatever their number; a UNION
        ALL plans in time linear in its parts (a cross join of 300 one-row subqueries took DuckDB 1.7 s to plan),
        and runs fastest nested (:func:`_union_all`)."""
        by_shape: dict[tuple[str, ...], list[int]] = {}
        for i, query in enumerate(queries):
            by_shape.setdefault(query.types, []).append(i)
        rows: list[list[Any]] = [[] for _ in queries]
        for indexes in by_shape.values():
            parts = []
            for i in indexes:
                named = ", ".join(f"{value} as __wap_v{j}" for j, value in enumerate(queries[i].select))
                parts.append(f"select {i} as __wap_q, {named} from {queries[i].source}")
            for row in self.query(_union_all(parts), []):
                rows[int(row[0])] = list(row[1:])
        return rows

    def _plan_of(self, new: Relation, old: Relation) -> tuple[list[str] | None, bool, bool]:
        """(usable key, keyless by hash, bucketable) of a pair on both sides, as :meth:`_compare` decides them."""
        key = self._usable_key(new, old)
        keyless_by_hash = key is None and self._hashes_every_column(new, old)
        return key, keyless_by_hash, key is not None and self._bucketable(new, old)

    def _prefetch_figures(self, pairs: Sequence[tuple[Relation | None, Relation | None]]) -> None:
        """The table figures of every pair :meth:`_compare` reads them for, in one statement."""
        wanted = []
        for new, old in pairs:
            if new is None or old is None:
                continue
            key, keyless_by_hash, bucketable = self._plan_of(new, old)
            if self._reads_figures(new, old, key, keyless_by_hash):
                wanted.append((new, old, key if bucketable else None))
        queries = [query for new, old, key in wanted for query in self._figures_queries(new, old, key)]
        rows = iter(self._single_rows(queries))
        for new, old, key in wanted:
            self._figures_cache[new.name] = self._figures_of(new, old, key, next(rows), next(rows))

    def _prefetch_stats(self, pairs: Sequence[tuple[Relation | None, Relation | None]]) -> None:
        """The per-side pass of every side that :meth:`diff_relation` will ask for, in one statement (decided as
        :meth:`_compare` decides, from the prefetched table figures; a side asked for later runs on its own)."""
        wanted: list[tuple[str, Relation, Relation | None]] = []
        for new, old in pairs:
            if new is None or old is None:
                wanted.append((self.write_schema, new, None) if new else (self.prod_schema, old, None))  # type: ignore[arg-type]
                continue
            figures = self._figures_cache.get(new.name)
            if figures is not None:
                after, before = figures
                key, _, bucketable = self._plan_of(new, old)
                if bucketable and max(after["count"], before["count"]) >= self.bucket_min_rows:
                    continue
                if after["count"] != before["count"]:
                    if key is None and not self.multiset_by_presence:  # the aggregation reads no content hash
                        wanted.append((self.write_schema, new, None))
                    continue
            wanted += [(self.write_schema, new, old), (self.prod_schema, old, new)]
        rows = self._single_rows([self._stats_query(schema, relation, other) for schema, relation, other in wanted])
        for (schema, relation, other), row in zip(wanted, rows, strict=True):
            self._stats_cache[self._stats_key(schema, relation, other)] = self._stats_of(relation, other, row)

    def _diff_pair(
        self, new: Relation | None, old: Relation | None
    ) -> tuple[dict[str, Any], Relation | None, Relation | None, dict[str, Any] | None, dict[str, Any] | None]:
        """A relation's entry without its periods, with what :meth:`_fill_periods` needs."""
        either = new or old
        assert either is not None
        entry: dict[str, Any] = {
            "name": either.name,
            "kind": either.kind,
            "kind_before": old.kind if old else None,
            "status": "added" if old is None else "removed" if new is None else "unchanged",
            "key": None,
            "diff_method": None,
            "duplicate_keys": False,
            "columns": self._schema_diff(new, old),
            "rows": {"before": None, "after": None, "added": None, "removed": None, "changed": None},
            "column_changes": {},
            "samples": {"added": [], "removed": [], "changed": []},
            "periods": [],
        }
        if new is not None and old is not None:
            after, before = self._compare(entry, new, old)
        else:
            after = self._stats(self.write_schema, new, None) if new else None
            before = self._stats(self.prod_schema, old, None) if old else None
            entry["rows"]["after"] = after["count"] if after else None
            entry["rows"]["before"] = before["count"] if before else None
        entry["content_hash_after"] = after["full_hash"] if after else None
        if new is None:
            entry["rows"]["removed"] = before["count"]
            entry["samples"]["removed"] = self._sample_all(self.prod_schema, old)
        elif old is None:
            entry["rows"]["added"] = after["count"]
            entry["samples"]["added"] = self._sample_all(self.write_schema, new)
        return entry, new, old, after, before

    # -- pieces ---------------------------------------------------------------------------------------------
    def _compare(self, entry: dict[str, Any], new: Relation, old: Relation) -> tuple[dict[str, Any], dict[str, Any]]:
        """Fill ``entry`` for a relation on both sides; return the figures of each side (count, hashes, ranges).

        Two tables with a key and different row counts are changed for certain: the per-side pass is skipped, the
        counts and date ranges come from table metadata (:meth:`_table_figures`) and the new side's content hash
        from the keyed join itself. Otherwise the per-side pass decides: equal count and content hash is the fast
        path, anything else gets a row diff.
        """
        key, keyless_by_hash, bucketable = self._plan_of(new, old)
        if self._reads_figures(new, old, key, keyless_by_hash):
            after, before = self._table_figures(new, old, key if bucketable else None)
            if bucketable and max(after["count"], before["count"]) >= self.bucket_min_rows:
                assert key is not None
                self._bucketed(entry, new, old, key, after, before)
                return after, before
            if after["count"] != before["count"]:
                entry["status"] = "changed"
                entry["rows"].update(after=after["count"], before=before["count"])
                if key is None:  # changed for certain: the diff by row hash, which reads the content hash
                    summed = self._multiset_by_hash(entry, new, old, list(new.column_types))
                    after["full_hash"] = summed or self._stats(self.write_schema, new, None)["full_hash"]
                    entry["diff_method"] = "multiset"
                    return after, before
                entry["key"] = key
                unique, after["full_hash"] = self._keyed_diff(entry, new, old, key, content_hash=True)
                if unique:
                    entry["diff_method"] = "key"
                    return after, before
                key = None  # duplicates: the multiset diff below, after the per-side pass
                entry["duplicate_keys"] = True
        after = self._stats(self.write_schema, new, old)
        before = self._stats(self.prod_schema, old, new)
        entry["rows"].update(after=after["count"], before=before["count"])
        same_schema = not any(entry["columns"].values()) and new.kind == old.kind
        if same_schema and after["count"] == before["count"] and after["hash"] == before["hash"]:
            entry["diff_method"] = "fast_path"
            entry["rows"].update(added=0, removed=0, changed=0)
        else:
            entry["status"] = "changed"
            self._row_diff(entry, new, old, key)
        return after, before

    def _reads_figures(self, new: Relation, old: Relation, key: Sequence[str] | None, keyless_by_hash: bool) -> bool:
        """Whether :meth:`_compare` reads the table figures (metadata) of a pair before any pass: for two tables
        with a key (or diffed by row hash without one), unless the catalog counts both below
        :attr:`bucket_min_rows` rows. Such a pair gets no buckets, and what the figures would save where the
        counts differ (the per-side pass, which gives counts, hashes and ranges at once) costs little on small
        tables; while for a project of many small unchanged tables the figures are a statement of one part per
        side that decides nothing (DuckDB: about 0.3 ms a part)."""
        if (key is None and not keyless_by_hash) or not new.kind == old.kind == "table":
            return False
        small = [rows is not None and rows < self.bucket_min_rows for rows in (new.rows, old.rows)]
        return not all(small)

    def _hashes_every_column(self, new: Relation, old: Relation) -> bool:
        """Whether the multiset diff by row hash covers every column of the new side (each in production, with
        its type): then two tables whose counts differ need no per-side pass of production."""
        return self.multiset_by_hash and all(old.column_types.get(name) == t for name, t in new.column_types.items())

    def _table_figures(
        self, new: Relation, old: Relation, key: Sequence[str] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Row count and min/max of each date/time column of two tables (and of a ``key`` column that range buckets
        can cut: ``key_range``), in one statement (or from the batch of :meth:`diff`).

        Both warehouses answer ``count(*)``, ``min`` and ``max`` of a table from its metadata (DuckDB from exact
        row-group statistics, Snowflake from micro-partition metadata), so this costs no scan, and the keyed join
        need not carry the time columns (which made it about 10% slower). Content hashes are left to the caller.
        """
        cached = self._figures_cache.pop(new.name, None)
        if cached is not None:
            return cached
        rows = self._single_rows(self._figures_queries(new, old, key))
        return self._figures_of(new, old, key, rows[0], rows[1])

    def _ranged_key(self, new: Relation, key: Sequence[str] | None) -> bool:
        return key is not None and len(key) == 1 and self.dialect.range_type(new.column_types[key[0]]) is not None

    def _figures_queries(self, new: Relation, old: Relation, key: Sequence[str] | None) -> list[_OneRow]:
        ranged = bool(key) and self._ranged_key(new, key)
        queries = []
        for schema, relation in ((self.write_schema, new), (self.prod_schema, old)):
            columns = _time_columns(relation) + ([key[0]] if key and ranged else [])
            types = ("count", *(relation.column_types[column] for column in columns for _ in range(2)))
            queries.append(
                _OneRow(["count(*)", *_bounds(columns)], self.dialect.relation(schema, relation.name), types)
            )
        return queries

    def _figures_of(
        self, new: Relation, old: Relation, key: Sequence[str] | None, *rows: Sequence[Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        ranged = bool(key) and self._ranged_key(new, key)
        figures = []
        for relation, row in zip((new, old), rows, strict=True):
            values = iter(row)
            count = int(next(values))
            figure = {
                "count": count,
                "hash": None,
                "full_hash": None,
                "ranges": _ranges(_time_columns(relation), values),
            }
            if ranged:
                figure["key_range"] = (next(values), next(values))
            figures.append(figure)
        return figures[0], figures[1]

    # -- fingerprints by key bucket (:mod:`wap.audit.buckets`) ----------------------------------------------------
    def _bucketable(self, new: Relation, old: Relation) -> bool:
        """Whether a keyed pair of tables may be diffed by key bucket: both sides have the same columns with the
        same types (a bucket's content hash then covers every column the join compares, and is the fast path's)."""
        return self.bucket_rows > 0 and new.kind == old.kind == "table" and new.column_types == old.column_types

    def _bucket_plan(self, new: Relation, key: list[str], after: dict[str, Any], before: dict[str, Any]):
        count = buckets.bucket_count(max(after["count"], before["count"]), self.bucket_rows, self.max_buckets)
        range_type = self.dialect.range_type(new.column_types[key[0]]) if len(key) == 1 else None
        lows = [figure["key_range"][0] for figure in (after, before) if figure.get("key_range")]
        highs = [figure["key_range"][1] for figure in (after, before) if figure.get("key_range")]
        lows, highs = [v for v in lows if v is not None], [v for v in highs if v is not None]
        low, high = (min(lows), max(highs)) if lows and highs else (None, None)
        return buckets.plan_buckets(range_type, low, high, count)

    def _bucket_of(self, plan: buckets.BucketPlan, alias: str, key: list[str]) -> str:
        columns = [f"{alias}.{quote(column)}" for column in key]
        if plan.kind == "range":
            return self.dialect.range_bucket(columns[0], plan.range_type or "integer", plan.low, plan.width)
        return self.dialect.hash_bucket(columns, plan.count)

    def _bucketed(
        self,
        entry: dict[str, Any],
        new: Relation,
        old: Relation,
        key: list[str],
        after: dict[str, Any],
        before: dict[str, Any],
    ) -> None:
        """The keyed diff by key bucket: one statement computes each side's count and content hash per bucket and
        returns the totals (the tables' content hashes), how many buckets differ and which (up to the share that
        restricts the join); then the join of the differing buckets' rows, or one join of everything if most
        differ. Fills ``entry`` and the content hashes of ``after``/``before``, exactly as the per-side pass and the
        keyed join would (the fast path when no bucket differs)."""
        plan = self._bucket_plan(new, key, after, before)
        entry["rows"].update(after=after["count"], before=before["count"])
        if not self._grouping_set:  # once a session, before its first bucket pass
            self._grouping_set = True
            for statement in self.dialect.grouping_settings(self.max_buckets + 1):
                self.query(statement, [])
        decodable = (
            self.decode_buckets != "never"
            and plan.kind == "range"
            and plan.range_type == "integer"
            and max(abs(plan.low), abs(plan.low + plan.width * plan.count)) < buckets.DECODED_KEYS_BELOW
        )
        sliced = plan.kind == "range" and plan.count >= 2 * buckets.PROBE_BUCKETS
        in_order = sliced and self._stored_in_key_order(new, old, key, after["count"], before["count"])
        if after["count"] == before["count"] and self.dialect.side_pass_first and not in_order:
            subset_differs = self._side_pass(entry, new, old, key, plan, after, before)
            if entry["diff_method"] == "fast_path":
                return
            # changed with equal counts: corrections (rows the pass can name) or a rewrite, told by the rows of a
            # subset of keys (integer ranges: fingerprinted in the pass itself) or of sampled keys
            if subset_differs is None:
                subset_differs = len(key) == 1 and self._sample_says_most_differ(plan, new, old, key)
            most_differ, decoding = subset_differs, decodable
        else:
            most_differ, decoding = self._probe(plan, new, old, key, after, before, decodable, in_order)
        decoding = decoding or (decodable and self.decode_buckets == "always")
        if most_differ:
            self.bucket_stats[new.name] = (plan.count, plan.count, "whole, after the probe")
            entry["status"], entry["key"] = "changed", key
            unique, full_hash = self._keyed_diff(entry, new, old, key, content_hash=True)
            after["full_hash"] = full_hash if unique else self._stats(self.write_schema, new, None)["full_hash"]
            self._keyed_outcome(entry, new, old, key, unique)
            return
        limit = buckets.joined_limit(plan.count, self.joined_share)
        row = self._bucket_figures(plan, new, old, key, limit, decoding=decoding)
        after["hash"] = after["full_hash"] = row[0]
        before["hash"] = before["full_hash"] = row[1]
        differing, rows_after, rows_before = int(row[2] or 0), int(row[3] or 0), int(row[4] or 0)
        if differing == 0:
            self.bucket_stats[new.name] = (plan.count, 0, "none")
            entry["diff_method"] = "fast_path"
            entry["rows"].update(added=0, removed=0, changed=0)
            return
        entry["status"] = "changed"
        entry["key"] = key
        listed = _samples(row[5], plain=not decoding)
        ids = sorted(int(item["b"]) if decoding else int(item) for item in listed)
        if len(ids) == differing and buckets.restricted(ids, plan.count, self.joined_share):
            self.bucket_stats[new.name] = (plan.count, differing, "restricted")
            unique = None
            if decoding:
                change = (after["count"] - before["count"], int(row[0] or 0) - int(row[1] or 0))
                unique = self._decoded_join(entry, new, old, key, plan, listed, change)
            if unique is None:
                restrict = [self._bucket_filter(plan, alias, key, ids) for alias in ("n", "o")]
                unique, _ = self._keyed_diff(
                    entry, new, old, key, restrict=restrict, expected=(rows_after, rows_before)
                )
        else:
            self.bucket_stats[new.name] = (plan.count, differing, "whole")
            unique, _ = self._keyed_diff(entry, new, old, key)
        log.info("%s: %s of %s key buckets differ", new.name, differing, plan.count)
        self._keyed_outcome(entry, new, old, key, unique)

    def _side_pass(
        self,
        entry: dict[str, Any],
        new: Relation,
        old: Relation,
        key: list[str],
        plan: buckets.BucketPlan,
        after: dict[str, Any],
        before: dict[str, Any],
    ) -> bool | None:
        """For two tables of equal row counts not stored in key order (:attr:`~wap.audit.dialect.Dialect.
        side_pass_first`): each side's count and content hash in one statement (about a scan of each, where the
        bucket pass costs DuckDB 0.3x more to group rows in no order by bucket). Equal: **unchanged** (the fast path,
        filled in ``entry``). Else the content hashes are set and returned is whether the rows of a subset of keys
        differ (every :func:`~wap.audit.buckets.subset_step`-th key of an integer key range, fingerprinted in the
        same pass: then the changes are likely spread over most buckets), None where no subset was taken."""
        d = self.dialect
        columns = sorted(new.column_types)  # the same columns and types on both sides (bucketable)
        select = ["count(*)", d.content_hash(columns)]
        types: tuple[str, ...] = ("count", "text")
        if plan.kind == "range" and plan.range_type == "integer":
            in_subset = d.multiple_of(f"{quote(key[0])} - {int(plan.low)}", buckets.subset_step(plan))
            select += [d.count_if(in_subset), d.sum_text_where(d.row_hash(columns), in_subset)]
            types += ("count", "text")
        queries = [
            _OneRow(select, d.relation(schema, relation.name), types)
            for schema, relation in ((self.write_schema, new), (self.prod_schema, old))
        ]
        after_row, before_row = self._single_rows(queries)
        after["hash"] = after["full_hash"] = after_row[1]
        before["hash"] = before["full_hash"] = before_row[1]
        if after_row[:2] == before_row[:2]:
            self.bucket_stats[new.name] = (plan.count, 0, "none, per-side pass")
            entry["diff_method"] = "fast_path"
            entry["rows"].update(added=0, removed=0, changed=0)
            return None
        return after_row[2:] != before_row[2:] if len(select) > 2 else None

    def _decoded_join(
        self,
        entry: dict[str, Any],
        new: Relation,
        old: Relation,
        key: list[str],
        plan: buckets.BucketPlan,
        listed: list[Mapping[str, Any]],
        change: tuple[int, int],
    ) -> bool | None:
        """The keyed join of the rows that differ, where the bucket pass named them: the keys of the buckets with
        one differing row (:func:`_decoded`) and the rows of the other differing buckets. None when this cannot
        stand for the join of every differing bucket: no bucket decoded, or the joined rows do not account for the
        whole change (``change``: the tables' differences in row count and content hash); then the caller joins
        the differing buckets' rows. True/False as :meth:`_keyed_diff` (False: a key matched several rows).

        The check is what makes it safe: the buckets left out hold equal counts and hashes on both sides, so the
        joined rows must differ by exactly the tables' differences; a key named wrongly (a bucket with two or more
        differing rows whose sums happen to divide) leaves part of that difference unaccounted for, except with the
        chance that a content hash misses a change.
        """
        decoded: dict[int, tuple[int, int, int]] = {}
        for item in listed:
            named = _decoded(plan, item)
            if named is not None:
                decoded[int(item["b"])] = named
        if not decoded:
            return None
        in_rest = [item for item in listed if int(item["b"]) not in decoded]
        rest = sorted(int(item["b"]) for item in in_rest)
        keys = sorted(k for k, _, _ in decoded.values())
        restrict = []
        for alias in ("n", "o"):
            condition, params = self.dialect.one_of(f"{alias}.{quote(key[0])}", keys)
            if rest:
                buckets_condition, bucket_params = self._bucket_filter(plan, alias, key, rest)
                condition, params = f"({condition} or {buckets_condition})", params + bucket_params
            restrict.append((condition, params))
        expected = (
            sum(n for _, n, _ in decoded.values()) + sum(int(item["n"]) for item in in_rest),
            sum(o for _, _, o in decoded.values()) + sum(int(item["o"]) for item in in_rest),
        )
        try:
            unique, _ = self._keyed_diff(entry, new, old, key, restrict=restrict, expected=expected, check=change)
        except _Unaccounted:
            log.info("%s: the named rows do not account for the change; joining the differing buckets", new.name)
            return None
        self.bucket_stats[new.name] = (plan.count, len(listed), f"restricted, {len(decoded)} buckets by key")
        return unique

    def _keyed_outcome(self, entry: dict[str, Any], new: Relation, old: Relation, key: list[str], unique: bool) -> None:
        """The keyed diff's method, or the multiset diff where the key matched several rows."""
        if unique:
            entry["diff_method"] = "key"
            return
        entry["duplicate_keys"] = True
        log.info("%s: key %s is not unique on both sides; falling back to a multiset diff", new.name, key)
        self._multiset_diff(entry, new, old)
        entry["diff_method"] = "multiset"

    def _bucket_figures(
        self,
        plan: buckets.BucketPlan,
        new: Relation,
        old: Relation,
        key: list[str],
        limit: int,
        where: str = "true",
        *,
        decoding: bool = False,
    ) -> tuple[Any, ...]:
        """One statement: per side and bucket, count and content hash; returned: both sides' content hashes (sums
        over the buckets), how many buckets differ, the rows of the differing buckets on each side, and up to
        ``limit`` differing bucket ids. ``where``: a condition on the key (table alias ``t``) that limits the pass.
        ``decoding`` (a one-column integer key): each differing bucket comes as a record of its id, its counts
        (``n``, ``o``) and the differences of the sums that name a bucket's one differing row (:func:`_decoded`)."""
        d = self.dialect
        h = d.row_hash(sorted(new.column_types), "t")
        sums = d.decoding_sums(f"t.{quote(key[0])}", h) if decoding else []
        extra = "".join(f", {value} as __wap_e{i}" for i, value in enumerate(sums))

        def per_bucket(schema: str, relation: Relation) -> str:
            return (
                f"select {self._bucket_of(plan, 't', key)} as __wap_b, count(*) as __wap_c, "
                f"{d.hash_sum(h)} as __wap_s{extra} from {d.relation(schema, relation.name)} t where {where} group by 1"
            )

        deltas = "".join(
            f", coalesce(n.__wap_e{i}, 0) - coalesce(o.__wap_e{i}, 0) as __wap_de{i}" for i in range(len(sums))
        )
        compared = (
            "select coalesce(n.__wap_b, o.__wap_b) as __wap_b, coalesce(n.__wap_c, 0) as __wap_nc, "
            "coalesce(o.__wap_c, 0) as __wap_oc, n.__wap_s as __wap_ns, o.__wap_s as __wap_os, "
            "(n.__wap_c is null or o.__wap_c is null or n.__wap_c <> o.__wap_c or n.__wap_s <> o.__wap_s) as __wap_x"
            f"{deltas} from ({per_bucket(self.write_schema, new)}) n "
            f"full outer join ({per_bucket(self.prod_schema, old)}) o on n.__wap_b = o.__wap_b"
        )
        which = "__wap_b"
        if decoding:
            fields = [("b", "__wap_b"), ("n", "__wap_nc"), ("o", "__wap_oc"), ("km", "__wap_de0"), ("m", "__wap_de1")]
            which = d.record(fields)
        sql = (
            f"select {d.sum_text('__wap_ns')}, {d.sum_text('__wap_os')}, {d.count_if('__wap_x')}, "
            "sum(case when __wap_x then __wap_nc else 0 end), sum(case when __wap_x then __wap_oc else 0 end), "
            f"{d.sample(which, '__wap_b', '__wap_x', limit, costly_value=False)}, count(*) from ({compared}) j"
        )
        (row,) = self.query(sql, [])
        return tuple(row)

    def _probe(
        self,
        plan: buckets.BucketPlan,
        new: Relation,
        old: Relation,
        key: list[str],
        after: dict[str, Any],
        before: dict[str, Any],
        decodable: bool,
        in_order: bool,
    ) -> tuple[bool, bool]:
        """(whether a cheap probe says the changes are spread over most buckets, whether the bucket pass should
        name the differing rows of its buckets). Most buckets differing: the whole join follows at once, without
        the bucket pass, which would find them all differing. A middle slice of buckets for tables stored in key
        order (:meth:`_probe_says_most_differ`), which also tells whether the differing buckets hold one differing
        row each (``decodable`` plans only: the naming costs the pass about 0.2x the floor, so only where the
        slice shows it pays); else, for a one-column key of two tables whose counts differ, the rows of a sample of
        keys (:meth:`_sample_says_most_differ`). Equal counts get no sample: such a table is most often unchanged,
        and the bucket pass is then the fast path (on Snowflake, and for tables stored in key order: the others get
        :meth:`_side_pass` instead of this probe)."""
        if in_order:  # range buckets of tables stored in key order (:meth:`_stored_in_key_order`)
            return self._probe_says_most_differ(plan, new, old, key, decodable)
        if len(key) != 1 or after["count"] == before["count"]:
            return False, False
        return self._sample_says_most_differ(plan, new, old, key), False

    def _sample_says_most_differ(self, plan: buckets.BucketPlan, new: Relation, old: Relation, key: list[str]) -> bool:
        """The rows of :data:`~wap.audit.buckets.SAMPLED_KEYS` keys sampled from the build, compared with
        production's by row hash: most buckets differ when at least :data:`~wap.audit.buckets.SAMPLED_SHARE` of
        them differ and (range buckets) the differing keys spread over more than
        :data:`~wap.audit.buckets.SAMPLED_SPREAD` of the key range
        (a day's load differs in a narrow range of recent keys; a rewrite differs everywhere). Each side is read
        by a bound list of keys, which the scan checks on the key column before it reads the other columns."""
        d = self.dialect
        sample = d.key_sample(self.write_schema, new.name, key[0], buckets.SAMPLED_KEYS)
        if sample is None:
            return False
        keys = [value for (value,) in self.query(*sample) if value is not None]
        if not keys:
            return False
        h = d.row_hash(sorted(new.column_types), "t")
        sides = []
        for schema, relation in ((self.write_schema, new), (self.prod_schema, old)):
            condition, params = d.one_of(f"t.{quote(key[0])}", keys)
            sides.append(
                (
                    f"select t.{quote(key[0])} as __wap_k, {h} as __wap_h from {d.relation(schema, relation.name)} t "
                    f"where {condition}",
                    params,
                )
            )
        differs = "n.__wap_k is null or o.__wap_k is null or n.__wap_h <> o.__wap_h"
        sql = (
            f"select count(*), {d.count_if(differs)}, "
            f"min(case when {differs} then coalesce(n.__wap_k, o.__wap_k) end), "
            f"max(case when {differs} then coalesce(n.__wap_k, o.__wap_k) end) "
            f"from ({sides[0][0]}) n full outer join ({sides[1][0]}) o on n.__wap_k = o.__wap_k"
        )
        (row,) = self.query(sql, sides[0][1] + sides[1][1])
        sampled, differing = int(row[0] or 0), int(row[1] or 0)
        log.info("%s: %s of %s sampled keys differ", new.name, differing, sampled)
        if sampled == 0 or differing < sampled * buckets.SAMPLED_SHARE:
            return False
        if plan.kind != "range" or row[2] is None:
            return True
        spread = plan.bucket_of(row[3]) - plan.bucket_of(row[2]) + 1
        return spread > plan.count * buckets.SAMPLED_SPREAD

    def _probe_says_most_differ(
        self, plan: buckets.BucketPlan, new: Relation, old: Relation, key: list[str], decodable: bool
    ) -> tuple[bool, bool]:
        """Whether the buckets of a middle slice of the key range (:func:`~wap.audit.buckets.probe_buckets`) mostly
        differ: then the changes are spread over the whole table, and the whole join follows at once, without the
        pass over every bucket (which would find them all differing); and whether (``decodable``) at least half of
        the slice's differing buckets hold one differing row each, which the bucket pass should then name
        (:func:`_decoded`). For range buckets of tables stored in key order, where the slice's range filter reads
        only its storage blocks; a heuristic for the plan, never for the figures (a probe that finds few
        differences leads to the full bucket pass)."""
        first, last = buckets.probe_buckets(plan.count)
        bounds = plan.key_bounds([first, last])
        assert bounds is not None
        low, high = (self.dialect.key_literal(value, plan.range_type or "integer") for value in bounds)
        where = f"t.{quote(key[0])} between {low} and {high}"
        row = self._bucket_figures(plan, new, old, key, last - first + 1, where=where, decoding=decodable)
        differing, probed = int(row[2] or 0), int(row[6] or 0)
        log.info("%s: %s of %s key buckets of the probe differ", new.name, differing, probed)
        named = sum(_decoded(plan, item) is not None for item in _samples(row[5])) if decodable else 0
        return probed > 0 and differing > probed * self.joined_share, differing > 0 and 2 * named >= differing

    def _stored_in_key_order(self, new: Relation, old: Relation, key: list[str], after: int, before: int) -> bool:
        """Whether both tables' keys rise along their rows, judged from the key at a few row positions
        (:meth:`_keys_along_rows`; False where they cannot be read)."""
        parts = 4
        samples = self._keys_along_rows(new, old, key, after, before, parts)
        return samples is not None and key_ranges(samples, parts) is not None

    def _bucket_filter(
        self, plan: buckets.BucketPlan, alias: str, key: list[str], ids: list[int]
    ) -> tuple[str, list[Any]]:
        """The condition (and parameters) that keeps a side's rows of buckets ``ids``. Range buckets also bound
        the key by the differing buckets' lowest and highest keys, which lets the scan skip the storage blocks
        outside (a day's changes sit in a few adjacent buckets)."""
        condition, params = self.dialect.one_of(self._bucket_of(plan, alias, key), ids)
        bounds = plan.key_bounds(ids)
        if bounds is None:
            return condition, params
        column = f"{alias}.{quote(key[0])}"
        low, high = (self.dialect.key_literal(value, plan.range_type or "integer") for value in bounds)
        ranged = f"{column} between {low} and {high}"
        if buckets.NULL_BUCKET in ids:
            ranged = f"({ranged} or {column} is null)"
        return f"({ranged} and {condition})", params

    @staticmethod
    def _schema_diff(new: Relation | None, old: Relation | None) -> dict[str, list[dict[str, str]]]:
        if new is None or old is None:
            return {"added": [], "removed": [], "type_changed": []}
        new_types, old_types = new.column_types, old.column_types
        return {
            "added": [{"name": name, "type": new_types[name]} for name in new_types if name not in old_types],
            "removed": [{"name": name, "type": old_types[name]} for name in old_types if name not in new_types],
            "type_changed": [
                {"name": name, "before": old_types[name], "after": new_types[name]}
                for name in new_types
                if name in old_types and old_types[name] != new_types[name]
            ],
        }

    def _stats(self, schema: str, relation: Relation, other: Relation | None) -> dict[str, Any]:
        """Count, content hash over the columns both sides share (sorted), min/max of time columns (one statement, or
        from the batch of :meth:`diff`)."""
        cached = self._stats_cache.pop(self._stats_key(schema, relation, other), None)
        if cached is not None:
            return cached
        (row,) = self._single_rows([self._stats_query(schema, relation, other)])
        return self._stats_of(relation, other, row)

    @staticmethod
    def _stats_key(schema: str, relation: Relation, other: Relation | None) -> tuple[str, str, tuple[str, ...]]:
        return schema, relation.name, tuple(sorted(other.column_types)) if other else ()

    @staticmethod
    def _shared(relation: Relation, other: Relation | None) -> list[str]:
        return sorted(set(relation.column_types) & set(other.column_types)) if other else []

    def _stats_query(self, schema: str, relation: Relation, other: Relation | None) -> _OneRow:
        shared, every = self._shared(relation, other), sorted(relation.column_types)
        none = "cast(null as varchar)"  # the type of a content hash, so that every such row has one shape
        times = _time_columns(relation)
        select = [
            "count(*)",
            self.dialect.content_hash(shared) if shared else none,
            # Over all columns too, when they differ from the shared ones: the fingerprint publish re-checks.
            self.dialect.content_hash(every) if every != shared else none,
            *_bounds(times),
        ]
        types = ("count", "text", "text", *(relation.column_types[column] for column in times for _ in range(2)))
        return _OneRow(select, self.dialect.relation(schema, relation.name), types)

    def _stats_of(self, relation: Relation, other: Relation | None, row: Sequence[Any]) -> dict[str, Any]:
        shared, every = self._shared(relation, other), sorted(relation.column_types)
        full_hash = row[2] if every != shared else row[1]
        ranges = _ranges(_time_columns(relation), iter(row[3:]))
        return {"count": int(row[0]), "hash": row[1], "full_hash": full_hash, "ranges": ranges}

    def _sample_all(self, schema: str, relation: Relation) -> list[Any]:
        if self.sample_rows < 1:
            return []
        columns = [name for name, _ in relation.columns]
        value = self.dialect.row_json("t", columns)
        sample = self.dialect.sample(value, self.dialect.row_hash(columns, "t"), "true", self.sample_rows)
        (row,) = self.query(f"select {sample} from {self.dialect.relation(schema, relation.name)} t", [])
        return _in_order(_samples(row[0]), columns)

    def _usable_key(self, new: Relation, old: Relation) -> list[str] | None:
        """The relation's key from the dbt project, in the catalog's spelling (dbt writes ``id``, Snowflake
        stores ``ID``); None if a key column is missing on either side."""
        key = self.keys.get(new.name.lower())
        if not key:
            return None
        spelling = {name.lower(): name for name in new.column_types}
        columns = [spelling.get(column.lower()) for column in key]
        if all(column is not None and column in old.column_types for column in columns):
            return columns  # type: ignore[return-value]
        return None

    def _row_diff(self, entry: dict[str, Any], new: Relation, old: Relation, key: list[str] | None) -> None:
        if key is not None:
            entry["key"] = key
            if self._keyed_diff(entry, new, old, key)[0]:
                entry["diff_method"] = "key"
                return
            entry["duplicate_keys"] = True
        if entry["duplicate_keys"]:
            log.info("%s: key %s is not unique on both sides; falling back to a multiset diff", new.name, entry["key"])
        self._multiset_diff(entry, new, old)
        entry["diff_method"] = "multiset"

    def _keyed_diff(
        self,
        entry: dict[str, Any],
        new: Relation,
        old: Relation,
        key: list[str],
        *,
        content_hash: bool = False,
        restrict: Sequence[tuple[str, list[Any]]] | None = None,
        expected: tuple[int, int] | None = None,
        check: tuple[int, int] | None = None,
    ) -> tuple[bool, str | None]:
        """A full outer join on ``key`` for every count; (False, None) when a key matches several rows.

        The join carries the key, a presence flag (a boolean: cheaper than an integer) and the compared columns
        (:meth:`~wap.audit.dialect.Dialect.compared`) of each side, named apart per side (``__wap_nc0``/``__wap_oc0``)
        and, with ``content_hash``, the new side's row hash over all its columns, whose
        sum it returns (the fingerprint the per-side pass would have computed). Nothing else rides along: every
        byte carried is stored in the join's hash table, so date ranges come from :meth:`_table_figures`.
        Samples are chosen in the join by key and their rows read afterwards by key (:meth:`_rows_by_key`):
        building every candidate's JSON in the join cost more than the rest of it.

        Large tables stored in key order are joined one key range at a time (:meth:`_key_boundaries`); the figures of
        the ranges add up to those of one join, and the samples are the same. ``restrict``: one condition (and its
        parameters) per side, new then production, that keeps the rows of the differing key buckets; the join is then
        one join of those rows, which hold ``expected`` rows (new, production) when the key is unique. ``check``
        (the tables' differences in row count and content hash): the joined rows must differ by exactly as much,
        else :class:`_Unaccounted` is raised (the restriction missed a differing row, or ``expected`` was wrong).
        """
        d = self.dialect
        new_types, old_types = new.column_types, old.column_types
        compared = [name for name in new_types if name in old_types and name not in key]

        def side(alias: str, relation: Relation, schema: str, where: str) -> str:
            types, other = (new_types, old_types) if alias == "n" else (old_types, new_types)
            select = [f"{alias}.{quote(column)} as __wap_{alias}k{i}" for i, column in enumerate(key)]
            select.append(f"true as __wap_{alias}p")
            for i, column in enumerate(compared):
                select.append(f"{d.compared(alias, column, types[column], other[column])} as __wap_{alias}c{i}")
            if content_hash and alias == "n":
                select.append(f"{d.row_hash(sorted(types), alias)} as __wap_h")
            if check is not None:
                select.append(f"{d.row_hash(sorted(types), alias)} as __wap_{alias}rh")
            return f"(select {', '.join(select)} from {d.relation(schema, relation.name)} {alias} where {where})"

        # Each comparison is made once per row, in a projection over the join, and "changed" once from those:
        # repeated inside every aggregate, they cost a fifth of the statement.
        on = " and ".join(f"__wap_nk{i} is not distinct from __wap_ok{i}" for i in range(len(key)))
        flags = ", ".join(f"__wap_nc{i} is distinct from __wap_oc{i} as __wap_d{i}" for i in range(len(compared)))
        any_differs = " or ".join(f"__wap_d{i}" for i in range(len(compared))) or "false"
        plain = self._plain_sample_keys(new, old, key)
        select = [
            "count(__wap_np)",
            "count(__wap_op)",
            d.count_if("__wap_op is null"),
            d.count_if("__wap_np is null"),
            d.count_if("__wap_changed"),
            self._sample_keys("n", key, "__wap_op is null", plain),
            self._sample_keys("o", key, "__wap_np is null", plain),
            self._sample_keys("n", key, "__wap_changed", plain),
        ] + [d.count_if(f"__wap_changed and __wap_d{i}") for i in range(len(compared))]
        if content_hash:
            select.append(d.sum_text("__wap_h"))
        if check is not None:
            select += [d.sum_text("__wap_nrh"), d.sum_text("__wap_orh")]
        if restrict is not None:
            ranges = [(restrict[0], restrict[1])]
        else:
            boundaries, mark = self._key_boundaries(new, old, key, entry["rows"]), d.placeholder
            ranges = list(
                zip(
                    range_filters(f"n.{quote(key[0])}", boundaries, mark),
                    range_filters(f"o.{quote(key[0])}", boundaries, mark),
                    strict=True,
                )
            )
        results = []
        for (new_where, new_params), (old_where, old_params) in ranges:
            joined = (
                f"select *{', ' + flags if flags else ''} from "
                f"{side('n', new, self.write_schema, new_where)} n full outer join "
                f"{side('o', old, self.prod_schema, old_where)} o on {on}"
            )
            rows = f"select *, __wap_np and __wap_op and ({any_differs}) as __wap_changed from ({joined}) j"
            (row,) = self.query(f"select {', '.join(select)} from ({rows}) r", new_params + old_params)
            results.append(row)
        counts = [sum(int(row[i] or 0) for row in results) for i in range(5)]
        rows_after, rows_before = expected or (entry["rows"]["after"], entry["rows"]["before"])
        if check is not None:
            hashes = [sum(int(row[i] or 0) for row in results) for i in (-2, -1)]
            if (counts[0] - counts[1], hashes[0] - hashes[1]) != check or (counts[0], counts[1]) != expected:
                raise _Unaccounted
        if counts[0] != rows_after or counts[1] != rows_before:
            return False, None  # a key matched more than one row on the other side
        entry["rows"].update(added=counts[2], removed=counts[3], changed=counts[4])
        end = 8 + len(compared)
        entry["column_changes"] = {
            column: sum(int(row[8 + i] or 0) for row in results) for i, column in enumerate(compared)
        }
        kinds = ((5, new), (6, old), (7, new))  # added, removed, changed: the key of the side that has the row
        samples = [
            self._merged_samples([_samples(row[i], plain=plain) for row in results], key, relation, plain)
            for i, relation in kinds
        ]
        entry["samples"] = self._keyed_samples(new, old, key, *samples)
        if not content_hash:
            return True, None
        hashes = [int(row[end]) for row in results if row[end] is not None]
        return True, str(sum(hashes)) if hashes else None

    def _key_boundaries(self, new: Relation, old: Relation, key: list[str], rows: Mapping[str, Any]) -> list[Any]:
        """The boundaries of the keyed join's key ranges (:func:`~wap.audit.key_ranges.range_filters`); none: one join.

        Boundaries only where the key is one integer column of two tables, the larger has at least 1.5 times
        ``partition_rows`` rows, and the keys sampled along the rows of both rise (stored in key order,
        :func:`~wap.audit.partition.key_ranges`); then about ``partition_rows`` rows a range.
        """
        largest = max(int(rows["after"] or 0), int(rows["before"] or 0))
        parts = round(largest / self.partition_rows) if self.partition_rows > 0 else 0
        if parts < 2 or not _one_column_key_of_two_tables(new, old, key):  # a view has no stored rows to sample
            return []
        samples = self._keys_along_rows(new, old, key, int(rows["after"] or 0), int(rows["before"] or 0), parts)
        if samples is None:
            return []
        boundaries = key_ranges(samples, parts)
        if boundaries is None:
            log.info("%s: key %s sampled along the rows is not in key order; one join", new.name, key[0])
            return []
        return boundaries

    def _keys_along_rows(
        self, new: Relation, old: Relation, key: list[str], after: int, before: int, parts: int
    ) -> list[list[Any]] | None:
        """Each table's key at the evenly spaced rows of :func:`~wap.audit.key_ranges.sample_positions` for ``parts``
        ranges (None: no row there, or a NULL key), in row order; None where they cannot be read (a column named
        ``rowid`` hides DuckDB's row position, a dialect without row positions, a failed read: only a speed-up is
        lost)."""
        if any(column.lower() == "rowid" for column in (*new.column_types, *old.column_types)):
            return None
        positions = [sample_positions(after, parts), sample_positions(before, parts)]
        tables = [(self.write_schema, new.name, positions[0]), (self.prod_schema, old.name, positions[1])]
        statement = self.dialect.key_samples(tables, key[0], new.column_types[key[0]])
        if statement is None:
            return None
        try:
            found = self.query(*statement)
        except Exception as error:
            log.warning("%s: could not sample the key along the rows (%s); taken as not in key order", new.name, error)
            return None
        keys: list[dict[int, Any]] = [{}, {}]
        for index, position, value in found:
            keys[int(index)][int(position)] = value
        return [[keys[index].get(position) for position in positions[index]] for index in (0, 1)]

    def _plain_sample_keys(self, new: Relation, old: Relation, key: list[str]) -> bool:
        """Whether the keyed join may pick its sample keys as the key's plain values, not as records of the key's
        columns: a one-column key of two tables, NULL on neither side (a plain NULL value would be left out).

        Ordering records costs DuckDB a sort key per candidate row: with the three kinds of samples, about 10% of
        the join. The NULL check reads only the storage blocks whose statistics allow a NULL key.
        """
        if not _one_column_key_of_two_tables(new, old, key):
            return False
        counts = [
            f"(select count(*) from {self.dialect.relation(schema, relation.name)} where {quote(key[0])} is null)"
            for schema, relation in ((self.write_schema, new), (self.prod_schema, old))
        ]
        (row,) = self.query(f"select {', '.join(counts)}", [])
        return not any(int(value or 0) for value in row)

    def _sample_keys(self, alias: str, key: list[str], condition: str, plain: bool) -> str:
        """The sample keys of one kind of row in the keyed join (side ``alias``): the ones with the smallest key
        hash (the hash of the key columns' values, so the same as :meth:`~wap.audit.dialect.Dialect.row_hash`), in
        that order. ``plain``: the key's values (:meth:`_plain_sample_keys`); else records of the key's columns,
        each carrying its hash as ``__wap_order``."""
        d = self.dialect
        columns = [f"__wap_{alias}k{i}" for i in range(len(key))]
        order = d.hash_of(columns)
        value = columns[0] if plain else d.record([*zip(key, columns, strict=True), (_ORDER, order)])
        return d.sample(value, order, condition, self.sample_rows, costly_value=False)

    def _merged_samples(self, lists: list[list[Any]], key: list[str], relation: Relation, plain: bool) -> list[Any]:
        """The sample keys of one kind, as mappings of the key's columns, from each range's join: those of the
        smallest key hash over all ranges (each range's are in that order already). Plain keys' hashes are read
        back from the warehouse (:meth:`~wap.audit.dialect.Dialect.key_hashes`): a few values, one statement."""
        merged = [value for values in lists for value in values]
        if not plain:  # sorted even from one join: a warehouse need not return them in order
            return sorted(merged, key=lambda value: value[_ORDER])[: self.sample_rows]
        if len(lists) > 1 and merged:
            hashes = dict(self.query(*self.dialect.key_hashes(merged, relation.column_types[key[0]])))
            merged = sorted(merged, key=lambda value: int(hashes[value]))[: self.sample_rows]
        return [{key[0]: value} for value in merged]

    def _keyed_samples(
        self, new: Relation, old: Relation, key: list[str], added: list[Any], removed: list[Any], changed: list[Any]
    ) -> dict[str, list[Any]]:
        """The sample rows of the sample keys the join chose, in the join's order."""
        new_rows = self._rows_by_key(self.write_schema, new, key, added + changed)
        old_rows = self._rows_by_key(self.prod_schema, old, key, removed + changed)

        def rows(found: dict[str, list[Any]], keys: list[Any]) -> list[Any]:
            return [row for value in keys for row in found.get(_key_text(value, key), [])][: self.sample_rows]

        pairs = [
            {"after": after, "before": before}
            for value in changed
            for after in new_rows.get(_key_text(value, key), [])[:1]
            for before in old_rows.get(_key_text(value, key), [])[:1]
        ]
        return {"added": rows(new_rows, added), "removed": rows(old_rows, removed), "changed": pairs}

    def _rows_by_key(self, schema: str, relation: Relation, key: list[str], values: list[Any]) -> dict[str, list[Any]]:
        """``{key text: [row, ...]}`` of the rows of ``relation`` whose key is one of ``values`` (bound)."""
        if not values:
            return {}
        d = self.dialect
        columns = [name for name, _ in relation.columns]
        where, params = self._key_filter(key, values)
        sql = (
            f"select {d.key_value('t', key)}, {d.row_json('t', columns)} "
            f"from {d.relation(schema, relation.name)} t where {where}"
        )
        found: dict[str, list[Any]] = {}
        for key_value, row in self.query(sql, params):
            (ordered,) = _in_order([_sample_item(row)], columns)
            found.setdefault(_key_text(_sample_item(key_value), key), []).append(ordered)
        return found

    def _key_filter(self, key: list[str], values: list[Any]) -> tuple[str, list[Any]]:
        """A condition on table ``t`` matching the rows whose key is one of ``values``, and its parameters.

        A one-column key is a list (:meth:`~wap.audit.dialect.Dialect.one_of`, plus ``IS NULL`` for a NULL key),
        which the warehouse checks cheaply per row (an OR of ``IS NOT DISTINCT FROM`` costs several times more);
        a composite key matches column by column, NULL-safely.
        """
        mark = self.dialect.placeholder
        if len(key) == 1:
            column = f"t.{quote(key[0])}"
            present = [value[key[0]] for value in values if value[key[0]] is not None]
            parts, params = [], []
            if present:
                condition, params = self.dialect.one_of(column, present)
                parts.append(condition)
            if len(present) < len(values):
                parts.append(f"{column} is null")
            return " or ".join(parts), params
        one = "(" + " and ".join(f"t.{quote(column)} is not distinct from {mark}" for column in key) + ")"
        return " or ".join(one for _ in values), [value[column] for value in values for column in key]

    def _multiset_diff(self, entry: dict[str, Any], new: Relation, old: Relation) -> None:
        """Rows only in the new build and rows only in production, over the columns both share, with multiplicity."""
        d = self.dialect
        shared = [name for name in new.column_types if name in old.column_types]
        if not shared:  # no column in common: no row of the new build can equal one of production
            entry["rows"].update(added=entry["rows"]["after"], removed=entry["rows"]["before"], changed=None)
            added, removed = self._sample_all(self.write_schema, new), self._sample_all(self.prod_schema, old)
            entry["samples"] = {"added": added, "removed": removed, "changed": []}
            return
        if self.multiset_by_hash and all(new.column_types[c] == old.column_types[c] for c in shared):
            self._multiset_by_hash(entry, new, old, shared)
            return
        cols = ", ".join(quote(c) for c in shared)
        order = sorted(shared)  # samples: the rows of the smallest row hashes over the columns in name order
        on = " and ".join(f"n.{quote(c)} is not distinct from o.{quote(c)}" for c in shared)
        only_new = self._excess("n", "o")
        only_old = self._excess("o", "n")
        sql = (
            f"select sum({only_new}), sum({only_old}), "
            f"{d.sample(d.row_json('n', shared), d.row_hash(order, 'n'), f'({only_new}) > 0', self.sample_rows)}, "
            f"{d.sample(d.row_json('o', shared), d.row_hash(order, 'o'), f'({only_old}) > 0', self.sample_rows)} "
            f"from (select {cols}, count(*) as __wap_n from {d.relation(self.write_schema, new.name)} "
            f"group by {cols}) n "
            f"full outer join (select {cols}, count(*) as __wap_n from {d.relation(self.prod_schema, old.name)} "
            f"group by {cols}) o on {on}"
        )
        (row,) = self.query(sql, [])
        entry["rows"].update(added=int(row[0] or 0), removed=int(row[1] or 0), changed=None)
        added, removed = _in_order(_samples(row[2]), shared), _in_order(_samples(row[3]), shared)
        entry["samples"] = {"added": added, "removed": removed, "changed": []}

    def _multiset_by_hash(self, entry: dict[str, Any], new: Relation, old: Relation, shared: list[str]) -> str | None:
        """The multiset diff by row hash, when the shared columns have the same types on both sides (a retyped
        column compares by value, which only the join does). Returns the new side's sum of row hashes over
        ``shared`` when the plan read it (the content hash, if ``shared`` is every column), else None.

        First by presence (:meth:`_presence`); when that cannot decide, one aggregation of both sides by row hash.
        """
        if self.multiset_by_presence:
            found = self._presence(new, old, shared)
            if found is not None:
                (added, added_sum, added_samples), (removed, _, removed_samples) = found
                entry["rows"].update(added=added, removed=removed, changed=None)
                entry["samples"] = {"added": added_samples, "removed": removed_samples, "changed": []}
                return added_sum
        self._multiset_by_aggregation(entry, new, old, shared)
        return None

    def _presence(
        self, new: Relation, old: Relation, shared: list[str]
    ) -> tuple[tuple[int, str | None, list[Any]], tuple[int, str | None, list[Any]]] | None:
        """The multiset diff from whether each row's hash is present on the other side, or None if that cannot
        decide it: per side, (rows absent from the other side, the side's sum of row hashes, sample rows).

        One statement reads each side once, marking every row by whether its row hash (over ``shared``, in name
        order) is one of the other side's (a semi join: a hash table of the other side's hashes, 25-40% cheaper than
        aggregating both sides by hash at 10M rows, and a row repeated on both sides multiplies nothing). It returns
        per side the row count, the count and smallest hashes of the rows whose hash is absent from the other side,
        the sum of the present rows' hashes, and for the build the sum of all its hashes (its content hash). The
        absent rows are what a side has more of, exactly when the rows present on both sides are the same
        multiset: then they have the same count and the same sum of hashes on both sides (a multiset that differs
        with equal count and sum has the content hash's chance, 2^-64). Otherwise (a row with two copies on one
        side and one on the other), or when the smallest absent hashes repeat (a sample is one row per hash),
        None: the aggregation decides.
        """
        d = self.dialect
        h = d.row_hash(sorted(shared))
        limit = self.sample_rows
        sides = ((self.write_schema, new), (self.prod_schema, old))
        located = [d.row_locator if relation.kind == "table" else None for _, relation in sides]  # else by hash
        hashed = [
            f"__wap_{q} {d.materialized} (select {h} as __wap_h{f', {locate} as __wap_r' if locate else ''} "
            f"from {d.relation(schema, relation.name)})"
            for q, ((schema, relation), locate) in enumerate(zip(sides, located, strict=True))
        ]
        figures = []
        for q, locate in enumerate(located):
            marked = (
                f"select __wap_h{', __wap_r' if locate else ''}, "
                f"__wap_h in (select __wap_h from __wap_{1 - q}) as __wap_m from __wap_{q}"  # a hash is never NULL
            )
            text = "cast(__wap_h as varchar)"  # a hash as text: fakesnow's results hold no unsigned 64-bit integer
            at = d.sample("__wap_r", "__wap_h", "not __wap_m", limit, costly_value=False) if locate else "null"
            total = d.sum_text("__wap_h") if q == 0 else "null"  # the build's content hash; production's is not needed
            figures.append(
                f"(select count(*), {total}, {d.count_if('not __wap_m')}, "
                f"{d.sum_text('case when __wap_m then __wap_h end')}, "
                f"{d.sample(text, '__wap_h', 'not __wap_m', limit)}, {at} from ({marked}) m) f{q}"
            )
        # Both sides' hashes computed once each (DuckDB: 15% less time than a statement a side computing both).
        (row,) = self.query(f"with {', '.join(hashed)} select * from {', '.join(figures)}", [])
        rows = [row[:6], row[6:]]
        present_rows = [(int(n) - int(absent or 0), int(summed or 0)) for n, _, absent, summed, *_ in rows]
        if present_rows[0] != present_rows[1]:  # the rows on both sides are not the same multiset
            return None
        found = []
        for (schema, relation), row in zip(sides, rows, strict=True):
            hashes, locators = _samples(row[4], plain=True), _samples(row[5], plain=True)
            if len(set(hashes)) < len(hashes):
                return None
            if locators:
                samples = self._rows_by_locator(schema, relation, shared, [int(value) for value in locators])
            else:
                samples = self._rows_by_hash(schema, relation, shared, hashes)
            found.append((int(row[2] or 0), row[1], samples))
        return found[0], found[1]

    def _rows_by_locator(self, schema: str, relation: Relation, shared: list[str], locators: list[int]) -> list[Any]:
        """The rows (over ``shared``) at ``locators`` (DuckDB row ids of a table), in the order of ``locators``."""
        assert self.dialect.row_locator is not None
        return self._rows_where(schema, relation, shared, self.dialect.row_locator, locators)

    def _multiset_by_aggregation(self, entry: dict[str, Any], new: Relation, old: Relation, shared: list[str]) -> None:
        """The multiset diff as one aggregation of both sides by row hash.

        Each row is counted under its 64-bit row hash over the shared columns in name order (the content hash's),
        with the side it comes from: a hash with more copies on one side than on the other is a row that side has
        more of. The figures are the join's (a changed row hidden by equal hashes has a chance of 2^-64, as for
        the content hash); the samples are the rows of the smallest such hashes, the join's too, read afterwards
        by hash from the side that has them.
        """
        d = self.dialect
        h = d.row_hash(sorted(shared))
        both = (
            f"select {h} as __wap_h, true as __wap_s from {d.relation(self.write_schema, new.name)} "
            f"union all select {h} as __wap_h, false as __wap_s from {d.relation(self.prod_schema, old.name)}"
        )
        # copies in the build minus copies in production; count_if and count are cheaper than a sum of +1/-1
        grouped = (
            f"select __wap_h, 2 * count_if(__wap_s) - count(*) as __wap_d from ({both}) s "
            "group by __wap_h having 2 * count_if(__wap_s) <> count(*)"
        )
        limit = self.sample_rows
        text = "cast(__wap_h as varchar)"  # a hash as text: fakesnow's results hold no unsigned 64-bit integer
        sql = (
            "select sum(case when __wap_d > 0 then __wap_d else 0 end), "
            "sum(case when __wap_d < 0 then -__wap_d else 0 end), "
            f"{d.sample(text, '__wap_h', '__wap_d > 0', limit, costly_value=False)}, "
            f"{d.sample(text, '__wap_h', '__wap_d < 0', limit, costly_value=False)} "
            f"from ({grouped}) e"
        )
        (row,) = self.query(sql, [])
        entry["rows"].update(added=int(row[0] or 0), removed=int(row[1] or 0), changed=None)
        added = self._rows_by_hash(self.write_schema, new, shared, _samples(row[2]))
        removed = self._rows_by_hash(self.prod_schema, old, shared, _samples(row[3]))
        entry["samples"] = {"added": added, "removed": removed, "changed": []}

    def _rows_by_hash(self, schema: str, relation: Relation, shared: list[str], hashes: list[Any]) -> list[Any]:
        """The rows (over ``shared``) whose row hash is one of ``hashes``, one per hash, in the order of ``hashes``."""
        h = self.dialect.row_hash(sorted(shared), "t")
        return self._rows_where(schema, relation, shared, h, [int(value) for value in hashes])

    def _rows_where(
        self, schema: str, relation: Relation, shared: list[str], expression: str, wanted: list[int]
    ) -> list[Any]:
        """The rows (over ``shared``) whose integer ``expression`` (over alias ``t``) is one of ``wanted``, one per
        value, in the order of ``wanted``."""
        if not wanted:
            return []
        d = self.dialect
        literals = ", ".join(str(value) for value in wanted)  # integers this engine read: no text from outside
        sql = (
            f"select cast({expression} as varchar), {d.row_json('t', shared)} from {d.relation(schema, relation.name)} "
            f"t where {expression} in ({literals})"
        )
        found: dict[int, Any] = {}
        for value, row_json in self.query(sql, []):
            found.setdefault(int(value), _sample_item(row_json))
        return _in_order([found[value] for value in wanted if value in found], shared)

    @staticmethod
    def _excess(this: str, other: str) -> str:
        """How many more copies of a row ``this`` side has than ``other`` (0 if none)."""
        n, o = f"{this}.__wap_n", f"{other}.__wap_n"
        return f"case when {o} is null then {n} when {n} > {o} then {n} - {o} else 0 end"

    def _period_counts(self, schema: str, relation: Relation, column: str, grain: str, rows: int | None) -> str:
        """Rows per period of one time column: (period key, count) rows.

        A DATE column of a relation of :data:`PERIODS_BY_DAY_ROWS` rows or more (``rows``; None: unknown) is counted
        per day first, then the days per period: grouping on the date itself is cheaper than computing the period
        of every row (20% for years, 35% for months on 10M rows), and a table has far fewer distinct days than
        rows. A TIMESTAMP has about as many distinct values as rows, so it is grouped on its period directly, as
        a DATE of a small relation is (the second grouping then costs more than it saves: 301 relations of 1,000
        rows, 0.13 s counted per day first against 0.10 s).
        """
        source, key = self.dialect.relation(schema, relation.name), self.dialect.period_key(column, grain)
        where = f"where {quote(column)} is not null"
        by_day = rows is None or rows >= PERIODS_BY_DAY_ROWS
        if by_day and relation.column_types.get(column, "").upper() == "DATE":
            days = f"select {quote(column)}, count(*) as __wap_n from {source} {where} group by 1"
            return f"select {key} as p, sum(__wap_n) as __wap_c from ({days}) days group by 1"
        return f"select {key} as p, count(*) as __wap_c from {source} {where} group by 1"

    def _fill_periods(
        self,
        compared: Sequence[
            tuple[dict[str, Any], Relation | None, Relation | None, dict[str, Any] | None, dict[str, Any] | None]
        ],
    ) -> None:
        """Rows per year (or month, for spans up to three years) of each time column of every entry, before and
        after, counted in one statement for all relations (a UNION ALL of each side's counts, tagged)."""
        plans = [
            self._period_plan(new, old, after, before, entry["status"]) for entry, new, old, after, before in compared
        ]
        queries = [query for plan in plans for column in plan for query in column["queries"]]
        counts: list[list[tuple[Any, Any]]] = [[] for _ in queries]
        if queries:
            tagged = _union_all(
                [f"select {i} as __wap_q, p, __wap_c from ({sql}) __wap_p{i}" for i, sql in enumerate(queries)]
            )
            for index, period, rows in self.query(tagged, []):
                counts[int(index)].append((period, rows))
        position = 0
        for (entry, *_), plan in zip(compared, plans, strict=True):
            periods = []
            for column in plan:
                by_label: dict[str, dict[str, int]] = {}
                for side in column["sides"]:
                    for period, rows in counts[position]:
                        label = _period_label(period, column["grain"])
                        by_label.setdefault(label, {"before": 0, "after": 0})[side] = int(rows)
                    position += 1
                if entry["status"] == "unchanged":
                    for label in by_label:
                        by_label[label]["before"] = by_label[label]["after"]
                range_after, range_before = column["after"], column["before"]
                periods.append(
                    {
                        "column": column["column"],
                        "grain": column["grain"],
                        "before": {"min": _jsonable(range_before[0]), "max": _jsonable(range_before[1])}
                        if range_before
                        else None,
                        "after": {"min": _jsonable(range_after[0]), "max": _jsonable(range_after[1])}
                        if range_after
                        else None,
                        "counts": [{"period": label, **by_label[label]} for label in sorted(by_label)],
                    }
                )
            entry["periods"] = periods

    def _period_plan(
        self,
        new: Relation | None,
        old: Relation | None,
        after: dict[str, Any] | None,
        before: dict[str, Any] | None,
        status: str,
    ) -> list[dict[str, Any]]:
        """Per time column of either side: its grain, ranges, and the period-count query of each side counted (an
        unchanged relation's production side is its build's)."""
        columns: list[str] = []
        for relation in (new, old):
            for name, data_type in relation.columns if relation else ():
                if _is_time(data_type) and name not in columns:
                    columns.append(name)
        plan = []
        for column in columns:
            range_after = after["ranges"].get(column) if after else None
            range_before = before["ranges"].get(column) if before else None
            # (year, month) of each bound: a DATE on one side and a TIMESTAMP on the other still compare.
            months = [v.year * 12 + v.month for r in (range_after, range_before) if r for v in r if v is not None]
            grain = "month" if months and max(months) - min(months) < 36 else "year"
            sides, queries = [], []
            for side, schema, relation, bounds, figures in (
                ("after", self.write_schema, new, range_after, after),
                ("before", self.prod_schema, old, range_before, before),
            ):
                if relation is None or bounds is None or (status == "unchanged" and side == "before"):
                    continue
                sides.append(side)
                rows = figures.get("count") if figures else None
                queries.append(self._period_counts(schema, relation, column, grain, rows))
            plan.append(
                {
                    "column": column,
                    "grain": grain,
                    "after": range_after,
                    "before": range_before,
                    "sides": sides,
                    "queries": queries,
                }
            )
        return plan
