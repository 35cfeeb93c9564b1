"""Diff every relation of the write schema against production, in the warehouse.

Python receives aggregates and at most ``sample_rows`` sample rows per kind, so its memory does not grow with
the tables. Per relation pair: one pass over each side for count, content hash and date ranges (the fast path:
equal count and hash is "unchanged", no join); then, for changed tables, one full outer join on the primary
key computing every count at once, or a multiset diff where there is no usable key; then rows per period for
each date/time column.
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
    return [json.loads(item) if isinstance(item, str) else item for item in value]


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
        after = self._stats(self.write_schema, new, old) if new else None
        before = self._stats(self.prod_schema, old, new) if old else None
        entry["content_hash_after"] = after["full_hash"] if after else None
        entry["rows"]["after"] = after["count"] if after else None
        entry["rows"]["before"] = before["count"] if before else None
        if new is None:
            entry["rows"]["removed"] = before["count"]
            entry["samples"]["removed"] = self._sample_all(self.prod_schema, old)
        elif old is None:
            entry["rows"]["added"] = after["count"]
            entry["samples"]["added"] = self._sample_all(self.write_schema, new)
        else:
            same_schema = not any(entry["columns"].values()) and new.kind == old.kind
            if same_schema and after["count"] == before["count"] and after["hash"] == before["hash"]:
                entry["diff_method"] = "fast_path"
                entry["rows"].update(added=0, removed=0, changed=0)
            else:
                entry["status"] = "changed"
                self._row_diff(entry, new, old)
        entry["periods"] = self._periods(new, old, after, before, entry["status"])
        return entry

    # -- pieces ---------------------------------------------------------------------------------------------
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
        times = [name for name, data_type in relation.columns if _is_time(data_type)]
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
        columns = [name for name, _ in relation.columns]
        value = self.dialect.row_json("t", columns)
        sample = self.dialect.sample(value, self.dialect.row_hash(columns, "t"), "true", self.sample_rows)
        (row,) = self.query(f"select {sample} from {self.dialect.relation(schema, relation.name)} t", [])
        return _samples(row[0])

    def _usable_key(self, new: Relation, old: Relation) -> list[str] | None:
        key = self.keys.get(new.name.lower())
        if key and all(column in new.column_types and column in old.column_types for column in key):
            return key
        return None

    def _row_diff(self, entry: dict[str, Any], new: Relation, old: Relation) -> None:
        key = self._usable_key(new, old)
        if key is not None:
            entry["key"] = key
            if self._keyed_diff(entry, new, old, key):
                entry["diff_method"] = "key"
                return
            entry["duplicate_keys"] = True
            log.info("%s: key %s is not unique on both sides; falling back to a multiset diff", new.name, key)
        self._multiset_diff(entry, new, old)
        entry["diff_method"] = "multiset"

    def _keyed_diff(self, entry: dict[str, Any], new: Relation, old: Relation, key: list[str]) -> bool:
        """One full outer join on ``key``. False when a key matches several rows (duplicates)."""
        d = self.dialect
        compared = [name for name in new.column_types if name in old.column_types and name not in key]
        differs = [f"n.{quote(c)} is distinct from o.{quote(c)}" for c in compared]
        both = f"n.{PRESENT} = 1 and o.{PRESENT} = 1"
        any_differs = f"{both} and ({' or '.join(differs)})" if differs else "1 = 0"
        key_hash_n = d.row_hash(key, "n")
        key_hash_o = d.row_hash(key, "o")
        new_columns = [name for name, _ in new.columns]
        old_columns = [name for name, _ in old.columns]
        after_json, before_json = d.row_json("n", new_columns), d.row_json("o", old_columns)
        changed_value = f"""'{{"after":' || {after_json} || ',"before":' || {before_json} || '}}'"""
        select = [
            d.count_if(f"n.{PRESENT} = 1"),
            d.count_if(f"o.{PRESENT} = 1"),
            d.count_if(f"o.{PRESENT} is null"),
            d.count_if(f"n.{PRESENT} is null"),
            d.count_if(any_differs),
            d.sample(d.row_json("n", new_columns), key_hash_n, f"o.{PRESENT} is null", self.sample_rows),
            d.sample(d.row_json("o", old_columns), key_hash_o, f"n.{PRESENT} is null", self.sample_rows),
            d.sample(changed_value, key_hash_n, any_differs, self.sample_rows),
        ] + [d.count_if(f"{both} and {condition}") for condition in differs]
        on = " and ".join(f"n.{quote(c)} is not distinct from o.{quote(c)}" for c in key)
        sql = (
            f"select {', '.join(select)} "
            f"from (select *, 1 as {PRESENT} from {d.relation(self.write_schema, new.name)}) n "
            f"full outer join (select *, 1 as {PRESENT} from {d.relation(self.prod_schema, old.name)}) o on {on}"
        )
        (row,) = self.query(sql, [])
        new_side, old_side = int(row[0] or 0), int(row[1] or 0)
        if new_side != entry["rows"]["after"] or old_side != entry["rows"]["before"]:
            return False  # a key matched more than one row on the other side
        entry["rows"].update(added=int(row[2] or 0), removed=int(row[3] or 0), changed=int(row[4] or 0))
        entry["samples"] = {"added": _samples(row[5]), "removed": _samples(row[6]), "changed": _samples(row[7])}
        entry["column_changes"] = {column: int(value or 0) for column, value in zip(compared, row[8:], strict=True)}
        return True

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
        entry["samples"] = {"added": _samples(row[2]), "removed": _samples(row[3]), "changed": []}

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
                    f"select {self.dialect.period_trunc(column, grain)} as p, count(*) "
                    f"from {self.dialect.relation(schema, relation.name)} where {quote(column)} is not null "
                    "group by 1 order by 1"
                )
                for period, rows in self.query(sql, []):
                    label = f"{period.year:04d}" if grain == "year" else f"{period.year:04d}-{period.month:02d}"
                    counts.setdefault(label, {"before": 0, "after": 0})[side] = int(rows)
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
