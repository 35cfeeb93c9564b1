"""Diff every relation of the write schema against production, in the warehouse.

Python receives aggregates and at most ``sample_rows`` sample rows per kind, so its memory does not grow with
the tables. Per relation pair:

- two tables with a key and different row counts (``count(*)`` is metadata) are changed for certain: one full
  outer join on the key computes every count, the new side's content hash and the date ranges, and picks the
  sample keys, whose rows are then read by key;
- otherwise one pass over each side computes count, content hash and date ranges (the fast path: equal count
  and hash is "unchanged", no join), and a changed pair gets the keyed join, or a multiset diff where there is
  no usable key (none, or duplicated);
- then rows per period (year, or month for spans under three years) of each date/time column.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from wap.diff.dialect import Dialect, quote

log = logging.getLogger(__name__)

#: Runs one statement with bound parameters and returns all rows.
Query = Callable[[str, Sequence[Any]], list[tuple]]

PRESENT = "__wap_present"
_TIME_TYPES = ("DATE", "TIMESTAMP", "DATETIME")


@dataclass(frozen=True)
class Relation:
    name: str
    kind: str  # "table" or "view"
    columns: tuple[tuple[str, str], ...]  # (name, type), in table order

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
    for schema, table, table_type, column, data_type in query(sql, params):
        key = (by_lower[schema.lower()], table.lower())
        names[key] = table
        kinds[key] = "view" if "VIEW" in table_type.upper() else "table"
        columns.setdefault(key, []).append((column, data_type.upper()))
    catalog: dict[str, dict[str, Relation]] = {schema: {} for schema in schemas}
    for (schema, lower), table in names.items():
        catalog[schema][lower] = Relation(table, kinds[(schema, lower)], tuple(columns[(schema, lower)]))
    return catalog


def _is_time(data_type: str) -> bool:
    return data_type.upper().startswith(_TIME_TYPES)


def _time_columns(relation: Relation) -> list[str]:
    return [name for name, data_type in relation.columns if _is_time(data_type)]


def _period_label(value: Any, grain: str) -> str:
    """``2022`` or ``2022-03`` from :meth:`~wap.diff.dialect.Dialect.period_key`'s integer."""
    value = int(value)
    return f"{value:04d}" if grain == "year" else f"{value // 100:04d}-{value % 100:02d}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _samples(value: Any) -> list[Any]:
    """Sample rows arrive as a list (DuckDB) or a JSON array (Snowflake) of JSON texts or objects."""
    if value is None:
        return []
    if isinstance(value, str):
        value = json.loads(value)
    return [_sample_item(item) for item in value]


def _in_order(rows: list[Any], columns: Sequence[str]) -> list[Any]:
    """Sample rows with their fields in table order (Snowflake returns an OBJECT's keys sorted by name)."""
    position = {column: i for i, column in enumerate(columns)}

    def place(item: tuple[str, Any]) -> int:
        return position.get(item[0], len(position))

    return [dict(sorted(row.items(), key=place)) if isinstance(row, dict) else row for row in rows]


def _sample_item(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


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
    ) -> None:
        self.query = query
        self.dialect = dialect
        self.write_schema = write_schema
        self.prod_schema = prod_schema
        self.keys = {name.lower(): list(columns) for name, columns in (keys or {}).items()}
        self.sample_rows = sample_rows

    # -- the whole diff -------------------------------------------------------------------------------------
    def diff(self) -> list[dict[str, Any]]:
        catalog = read_catalog(self.query, self.dialect, [self.write_schema, self.prod_schema])
        new, old = catalog[self.write_schema], catalog[self.prod_schema]
        entries = []
        for lower in sorted(set(new) | set(old)):
            entries.append(self.diff_relation(new.get(lower), old.get(lower)))
        return entries

    def diff_relation(self, new: Relation | None, old: Relation | None) -> dict[str, Any]:
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
        entry["periods"] = self._periods(new, old, after, before, entry["status"])
        return entry

    # -- pieces ---------------------------------------------------------------------------------------------
    def _compare(self, entry: dict[str, Any], new: Relation, old: Relation) -> tuple[dict[str, Any], dict[str, Any]]:
        """Fill ``entry`` for a relation on both sides; return the figures of each side (count, hashes, ranges).

        Two tables with a key and different row counts (``count(*)`` is metadata on both warehouses) are changed
        for certain: the per-side pass is skipped and its figures come from the keyed join itself. Otherwise the
        per-side pass decides: equal count and content hash is the fast path, anything else gets a row diff.
        """
        key = self._usable_key(new, old)
        if key is not None and new.kind == old.kind == "table":
            after_count, before_count = self._counts(new, old)
            if after_count != before_count:
                entry["status"] = "changed"
                entry["key"] = key
                entry["rows"].update(after=after_count, before=before_count)
                sides = self._keyed_diff(entry, new, old, key, with_stats=True)
                if sides is not None:
                    entry["diff_method"] = "key"
                    return sides
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

    def _counts(self, new: Relation, old: Relation) -> tuple[int, int]:
        d = self.dialect
        sql = (
            f"select (select count(*) from {d.relation(self.write_schema, new.name)}), "
            f"(select count(*) from {d.relation(self.prod_schema, old.name)})"
        )
        ((after, before),) = self.query(sql, [])
        return int(after), int(before)

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
        """Count, content hash over the columns both sides share (sorted), min/max of time columns."""
        shared = sorted(set(relation.column_types) & set(other.column_types)) if other else []
        every = sorted(relation.column_types)
        times = _time_columns(relation)
        select = [
            "count(*)",
            self.dialect.content_hash(shared) if shared else "null",
            # Over all columns too, when they differ from the shared ones: the fingerprint publish re-checks.
            self.dialect.content_hash(every) if every != shared else "null",
        ]
        for column in times:
            select += [f"min({quote(column)})", f"max({quote(column)})"]
        (row,) = self.query(f"select {', '.join(select)} from {self.dialect.relation(schema, relation.name)}", [])
        ranges = {column: (row[3 + 2 * i], row[4 + 2 * i]) for i, column in enumerate(times)}
        full_hash = row[2] if every != shared else row[1]
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
            if self._keyed_diff(entry, new, old, key) is not None:
                entry["diff_method"] = "key"
                return
            entry["duplicate_keys"] = True
        if entry["duplicate_keys"]:
            log.info("%s: key %s is not unique on both sides; falling back to a multiset diff", new.name, entry["key"])
        self._multiset_diff(entry, new, old)
        entry["diff_method"] = "multiset"

    def _keyed_diff(
        self, entry: dict[str, Any], new: Relation, old: Relation, key: list[str], *, with_stats: bool = False
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """One full outer join on ``key`` for every count; None when a key matches several rows (duplicates).

        The join carries the key, the compared columns (:meth:`~wap.diff.dialect.Dialect.compared`) and, with
        ``with_stats``, what the per-side pass would have computed (the new side's content hash over all its
        columns, min/max of time columns), which it then returns. Samples are chosen in the join by key and
        their rows read afterwards by key (:meth:`_rows_by_key`): building every candidate's JSON in the join
        cost more than the rest of it.
        """
        d = self.dialect
        new_types, old_types = new.column_types, old.column_types
        compared = [name for name in new_types if name in old_types and name not in key]
        times = {"n": _time_columns(new), "o": _time_columns(old)} if with_stats else {"n": [], "o": []}

        def side(alias: str, relation: Relation, schema: str, types: dict[str, str], other: dict[str, str]) -> str:
            select = [f"{alias}.{quote(column)}" for column in key] + [f"1 as {PRESENT}"]
            select += [f"{d.compared(alias, c, types[c], other[c])} as __wap_c{i}" for i, c in enumerate(compared)]
            select += [f"{alias}.{quote(c)} as __wap_t{i}" for i, c in enumerate(times[alias])]
            if with_stats and alias == "n":
                select.append(f"{d.row_hash(sorted(types), alias)} as __wap_h")
            return f"(select {', '.join(select)} from {d.relation(schema, relation.name)} {alias}) {alias}"

        both = f"n.{PRESENT} = 1 and o.{PRESENT} = 1"
        differs = [f"n.__wap_c{i} is distinct from o.__wap_c{i}" for i in range(len(compared))]
        any_differs = f"{both} and ({' or '.join(differs)})" if differs else "1 = 0"
        select = [
            f"count(n.{PRESENT})",
            f"count(o.{PRESENT})",
            d.count_if(f"o.{PRESENT} is null"),
            d.count_if(f"n.{PRESENT} is null"),
            d.count_if(any_differs),
            d.sample(d.key_value("n", key), d.row_hash(key, "n"), f"o.{PRESENT} is null", self.sample_rows),
            d.sample(d.key_value("o", key), d.row_hash(key, "o"), f"n.{PRESENT} is null", self.sample_rows),
            d.sample(d.key_value("n", key), d.row_hash(key, "n"), any_differs, self.sample_rows),
        ] + [d.count_if(f"{both} and {condition}") for condition in differs]
        if with_stats:
            select.append(d.sum_text("n.__wap_h"))
            for alias in ("n", "o"):
                select += [f"{f}({alias}.__wap_t{i})" for i in range(len(times[alias])) for f in ("min", "max")]
        on = " and ".join(f"n.{quote(c)} is not distinct from o.{quote(c)}" for c in key)
        new_side = side("n", new, self.write_schema, new_types, old_types)
        old_side = side("o", old, self.prod_schema, old_types, new_types)
        sql = f"select {', '.join(select)} from {new_side} full outer join {old_side} on {on}"
        (row,) = self.query(sql, [])
        new_count, old_count = int(row[0] or 0), int(row[1] or 0)
        if new_count != entry["rows"]["after"] or old_count != entry["rows"]["before"]:
            return None  # a key matched more than one row on the other side
        entry["rows"].update(added=int(row[2] or 0), removed=int(row[3] or 0), changed=int(row[4] or 0))
        end = 8 + len(compared)
        entry["column_changes"] = {column: int(value or 0) for column, value in zip(compared, row[8:end], strict=True)}
        entry["samples"] = self._keyed_samples(new, old, key, *(_samples(value) for value in row[5:8]))
        if not with_stats:
            return {}, {}
        bounds = iter(row[end + 1 :])
        ranges = {alias: {column: (next(bounds), next(bounds)) for column in times[alias]} for alias in ("n", "o")}
        after = {"count": new_count, "hash": None, "full_hash": row[end], "ranges": ranges["n"]}
        before = {"count": old_count, "hash": None, "full_hash": None, "ranges": ranges["o"]}
        return after, before

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
        one = "(" + " and ".join(f"t.{quote(column)} is not distinct from {d.placeholder}" for column in key) + ")"
        params = [value[column] for value in values for column in key]
        sql = (
            f"select {d.key_value('t', key)}, {d.row_json('t', columns)} "
            f"from {d.relation(schema, relation.name)} t where {' or '.join(one for _ in values)}"
        )
        found: dict[str, list[Any]] = {}
        for key_value, row in self.query(sql, params):
            (ordered,) = _in_order([_sample_item(row)], columns)
            found.setdefault(_key_text(_sample_item(key_value), key), []).append(ordered)
        return found

    def _multiset_diff(self, entry: dict[str, Any], new: Relation, old: Relation) -> None:
        """Rows only in the new build and rows only in production, over the columns both share, with multiplicity."""
        d = self.dialect
        shared = [name for name in new.column_types if name in old.column_types]
        if not shared:  # no column in common: no row of the new build can equal one of production
            entry["rows"].update(added=entry["rows"]["after"], removed=entry["rows"]["before"], changed=None)
            added, removed = self._sample_all(self.write_schema, new), self._sample_all(self.prod_schema, old)
            entry["samples"] = {"added": added, "removed": removed, "changed": []}
            return
        cols = ", ".join(quote(c) for c in shared)
        on = " and ".join(f"n.{quote(c)} is not distinct from o.{quote(c)}" for c in shared)
        only_new = self._excess("n", "o")
        only_old = self._excess("o", "n")
        sql = (
            f"select sum({only_new}), sum({only_old}), "
            f"{d.sample(d.row_json('n', shared), d.row_hash(shared, 'n'), f'({only_new}) > 0', self.sample_rows)}, "
            f"{d.sample(d.row_json('o', shared), d.row_hash(shared, 'o'), f'({only_old}) > 0', self.sample_rows)} "
            f"from (select {cols}, count(*) as __wap_n from {d.relation(self.write_schema, new.name)} "
            f"group by {cols}) n "
            f"full outer join (select {cols}, count(*) as __wap_n from {d.relation(self.prod_schema, old.name)} "
            f"group by {cols}) o on {on}"
        )
        (row,) = self.query(sql, [])
        entry["rows"].update(added=int(row[0] or 0), removed=int(row[1] or 0), changed=None)
        added, removed = _in_order(_samples(row[2]), shared), _in_order(_samples(row[3]), shared)
        entry["samples"] = {"added": added, "removed": removed, "changed": []}

    @staticmethod
    def _excess(this: str, other: str) -> str:
        """How many more copies of a row ``this`` side has than ``other`` (0 if none)."""
        n, o = f"{this}.__wap_n", f"{other}.__wap_n"
        return f"case when {o} is null then {n} when {n} > {o} then {n} - {o} else 0 end"

    def _periods(
        self,
        new: Relation | None,
        old: Relation | None,
        after: dict[str, Any] | None,
        before: dict[str, Any] | None,
        status: str,
    ) -> list[dict[str, Any]]:
        """Rows per year (or month, for spans up to three years) of each time column, before and after."""
        columns: list[str] = []
        for relation in (new, old):
            for name, data_type in relation.columns if relation else ():
                if _is_time(data_type) and name not in columns:
                    columns.append(name)
        periods = []
        for column in columns:
            range_after = after["ranges"].get(column) if after else None
            range_before = before["ranges"].get(column) if before else None
            # (year, month) of each bound: a DATE on one side and a TIMESTAMP on the other still compare.
            months = [v.year * 12 + v.month for r in (range_after, range_before) if r for v in r if v is not None]
            grain = "month" if months and max(months) - min(months) < 36 else "year"
            counts: dict[str, dict[str, int]] = {}
            sides = [("after", self.write_schema, new, range_after), ("before", self.prod_schema, old, range_before)]
            for side, schema, relation, bounds_side in sides:
                if relation is None or bounds_side is None or (status == "unchanged" and side == "before"):
                    continue
                sql = (
                    f"select {self.dialect.period_key(column, grain)} as p, count(*) "
                    f"from {self.dialect.relation(schema, relation.name)} where {quote(column)} is not null "
                    "group by 1"
                )
                for period, rows in self.query(sql, []):
                    counts.setdefault(_period_label(period, grain), {"before": 0, "after": 0})[side] = int(rows)
            if status == "unchanged":
                for label in counts:
                    counts[label]["before"] = counts[label]["after"]
            periods.append(
                {
                    "column": column,
                    "grain": grain,
                    "before": {"min": _jsonable(range_before[0]), "max": _jsonable(range_before[1])}
                    if range_before
                    else None,
                    "after": {"min": _jsonable(range_after[0]), "max": _jsonable(range_after[1])}
                    if range_after
                    else None,
                    "counts": [{"period": label, **counts[label]} for label in sorted(counts)],
                }
            )
        return periods
