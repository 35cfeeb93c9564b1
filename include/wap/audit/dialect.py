"""SQL of the diff for each warehouse dialect, generated in this one place.

Identifiers from the catalog are quoted (they may hold any character); values are bound parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Type names (prefixes) whose values have no fixed width: they travel through a diff join as hashes.
_VARIABLE_WIDTH = tuple(
    "VARCHAR TEXT STRING CHAR NVARCHAR BLOB BINARY VARBINARY BYTEA BIT JSON VARIANT OBJECT ARRAY STRUCT MAP UNION "
    "LIST GEOGRAPHY GEOMETRY".split()
)

#: Key types by whose ranges a keyed join may be split (:meth:`Dialect.key_samples`).
_INTEGER_TYPES = frozenset(
    "TINYINT SMALLINT INTEGER BIGINT HUGEINT UTINYINT USMALLINT UINTEGER UBIGINT UHUGEINT".split()
)


def quote(identifier: str) -> str:
    """A double-quoted identifier, exact case, with embedded quotes doubled (DuckDB and Snowflake alike)."""
    return '"' + identifier.replace('"', '""') + '"'


class Dialect:
    """DuckDB's SQL; :class:`SnowflakeDialect` overrides what differs."""

    name = "duckdb"
    placeholder = "?"
    #: A column that locates a row of a table within one read (DuckDB's row id), or None
    row_locator: str | None = "rowid"
    #: How a CTE is declared that the query reads twice and the warehouse should compute once
    materialized = "as materialized"
    #: Whether two large keyed tables of equal row counts, not stored in key order, get the per-side pass (count and
    #: content hash of each) before any bucket pass: DuckDB groups 10M rows in no order by bucket for about 0.3x a
    #: scan more than it sums them, so an unchanged table costs less; a changed one pays the pass on top.
    side_pass_first = True

    def relation(self, schema: str, table: str) -> str:
        return f"{quote(schema)}.{quote(table)}"

    def catalog(self, schemas: Sequence[str]) -> tuple[str, list[str]]:
        """Relations and their columns in ``schemas`` (case-insensitive): schema, name, kind, column, type, and the
        table's row count as the catalog keeps it (NULL for a view). DuckDB's ``estimated_size`` counts a table's
        rows, deleted ones too until they are vacuumed: never fewer than it holds."""
        marks = ", ".join(self.placeholder for _ in schemas)
        sql = (
            "select t.table_schema, t.table_name, t.table_type, c.column_name, c.data_type, d.estimated_size "
            "from information_schema.tables t join information_schema.columns c "
            "on c.table_catalog = t.table_catalog and c.table_schema = t.table_schema "
            "and c.table_name = t.table_name "
            "left join duckdb_tables() d on d.database_name = t.table_catalog and d.schema_name = t.table_schema "
            "and d.table_name = t.table_name "
            f"where t.table_catalog = current_database() and lower(t.table_schema) in ({marks}) "
            "order by t.table_schema, t.table_name, c.ordinal_position"
        )
        return sql, [schema.lower() for schema in schemas]

    def row_hash(self, columns: Sequence[str], alias: str | None = None) -> str:
        prefix = f"{alias}." if alias else ""
        return self.hash_of([prefix + quote(column) for column in columns])

    def hash_of(self, expressions: Sequence[str]) -> str:
        """One 64-bit hash of ``expressions`` (NULLs hash as values)."""
        return f"hash({', '.join(expressions)})"

    def content_hash(self, columns: Sequence[str]) -> str:
        """An order-independent hash of all rows over ``columns`` (a sum of row hashes, no overflow)."""
        return f"cast(sum({self.row_hash(columns)}) as varchar)"

    def row_json(self, alias: str, columns: Sequence[str]) -> str:
        fields = ", ".join(f"{quote(column)} := {alias}.{quote(column)}" for column in columns)
        return f"to_json(struct_pack({fields}))"

    def sample(self, value: str, order: str, condition: str, limit: int, *, costly_value: bool = True) -> str:
        """Up to ``limit`` values of ``value`` where ``condition``, the ones with the smallest ``order``.

        ``costly_value``: ``value`` is expensive to build (a row's JSON text), so build it only for the rows that
        pass ``condition``; a key's struct is a cheap view of its columns, and that CASE only costs time.
        """
        if limit < 1:
            return "null"  # arg_min wants a positive count; WAP_SAMPLE_ROWS=0 means no samples
        if costly_value:
            # The CASE keeps DuckDB from building ``value`` for rows the FILTER drops: 3x faster for JSON text.
            value = f"case when {condition} then {value} end"
        return f"arg_min({value}, {order}, {int(limit)}) filter (where {condition})"

    def period_key(self, column: str, grain: str) -> str:
        """An integer per period of a date/time column: the year, or year * 100 + month (grouping on an integer is
        about 3x faster than on ``date_trunc``'s date)."""
        if grain == "year":
            return f"year({quote(column)})"
        return f"year({quote(column)}) * 100 + month({quote(column)})"

    def count_if(self, condition: str) -> str:
        return f"count_if({condition})"

    def view_definitions(self, schema: str) -> tuple[str, list[str]]:
        """Name and SQL text of every view in ``schema`` (case-insensitive)."""
        return (
            "select view_name, sql from duckdb_views() where database_name = current_database() "
            f"and not internal and lower(schema_name) = {self.placeholder}",
            [schema.lower()],
        )

    def key_value(self, alias: str, key: Sequence[str]) -> str:
        """The key columns of a row as one value that comes back to Python as a mapping (or its JSON text)."""
        return self.record([(column, f"{alias}.{quote(column)}") for column in key])

    def one_of(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """A condition that ``column`` is one of ``values`` (none NULL), and its parameters: DuckDB compares with a
        bound list (``= any(?)``), half the time of an ``IN`` list of as many parameters."""
        return f"{column} = any({self.placeholder})", [list(values)]

    def record(self, fields: Sequence[tuple[str, str]]) -> str:
        """One value of named ``fields`` (name, expression) that comes back to Python as a mapping (or its JSON)."""
        return "struct_pack(" + ", ".join(f"{quote(name)} := {value}" for name, value in fields) + ")"

    def sum_text(self, expression: str) -> str:
        """``sum(expression)`` as text (a content hash: exact digits, whatever the number's size)."""
        return f"cast(sum({expression}) as varchar)"

    def sum_text_where(self, expression: str, condition: str) -> str:
        """:meth:`sum_text` over the rows where ``condition`` (a FILTER: a CASE computed ``expression`` for every
        row, 0.2x the floor more at 10M rows)."""
        return f"cast(sum({expression}) filter (where {condition}) as varchar)"

    def multiple_of(self, expression: str, power_of_two: int) -> str:
        """Whether the non-negative integer ``expression`` is a multiple of ``power_of_two`` (a bit mask)."""
        return f"(({expression}) & {int(power_of_two) - 1}) = 0"

    def compared(self, alias: str, column: str, data_type: str, other_type: str) -> str:
        """What a join carries of a column whose values are compared NULL-safely with the other side's.

        Variable-width values (text, binary, nested) travel through the join as their 64-bit hash, which
        makes the join about 30% faster (the chance that a change hides in an equal hash is 2^-64 per value).
        A column retyped between fixed-width types (INTEGER to BIGINT, DECIMAL(10,2) to DECIMAL(12,4), DATE to
        TIMESTAMP) is compared by value; retyped to or from a variable-width type, by its text on both sides.
        """
        value = f"{alias}.{quote(column)}"
        if data_type != other_type and (self.is_variable_width(data_type) or self.is_variable_width(other_type)):
            return f"hash(cast({value} as varchar))"
        if self.is_variable_width(data_type):
            return f"hash({value})"
        return value

    @staticmethod
    def is_variable_width(data_type: str) -> bool:
        upper = data_type.upper()
        return "[" in upper or upper.startswith(_VARIABLE_WIDTH)

    def key_hashes(self, values: Sequence[Any], data_type: str) -> tuple[str, list[Any]]:
        """Each of ``values`` (none NULL) with the hash a column of ``data_type`` holding it has (:meth:`hash_of`):
        ``(value, hash)`` rows."""
        return (
            f"select k, {self.hash_of(['k'])} from (select unnest(cast({self.placeholder} as {data_type}[])) as k) t",
            [list(values)],
        )

    def range_type(self, data_type: str) -> str | None:
        """``integer`` or ``date`` for a key type whose values key range buckets (:mod:`wap.audit.buckets`) cut by
        arithmetic; None for any other type (its buckets are hashes)."""
        upper = data_type.upper()
        if upper in _INTEGER_TYPES:
            return "integer"
        return "date" if upper == "DATE" else None

    def range_bucket(self, column: str, range_type: str, low: Any, width: int) -> str:
        """The range bucket of key ``column`` (SQL): ``(key - low) // width``, -1 for a NULL key. ``low`` is a key
        value this engine read from the warehouse (an integer or a date), written as a literal."""
        offset = f"({column} - {self.key_literal(low, range_type)})"
        return f"coalesce({offset} // {int(width)}, -1)"

    def hash_bucket(self, columns: Sequence[str], count: int) -> str:
        """The hash bucket of the key ``columns`` (SQL expressions): the key's hash modulo ``count``."""
        return f"({self.hash_of(columns)} % {int(count)})"

    @staticmethod
    def key_literal(value: Any, range_type: str) -> str:
        """A key value read from the warehouse as a SQL literal: an integer, or a date (``cast('..' as date)``)."""
        if range_type == "date":
            return f"cast('{value.isoformat()}' as date)"
        return str(int(value))

    def key_sample(self, schema: str, table: str, column: str, rows: int) -> tuple[str, list[Any]] | None:
        """Up to ``rows`` values of ``column`` sampled from a table (a reservoir sample: a scan of that column only;
        repeatable, so that the same tables get the same plan)."""
        sample = f"using sample reservoir({int(rows)} rows) repeatable (20)"
        return f"select {quote(column)} from {self.relation(schema, table)} {sample}", []

    def hash_sum(self, expression: str) -> str:
        """The exact sum of 64-bit hashes (kept as a number, to be summed again)."""
        return f"sum({expression})"

    def grouping_settings(self, groups: int) -> list[str]:
        """Statements that let this session group up to ``groups`` buckets in a perfect hash table (an array
        indexed by the bucket number, where the bucket expression's statistics bound it): DuckDB does so only
        below 2^12 groups by default, and 10,000 buckets of 10M rows then cost 1.47x the floor to group in a hash
        table, 1.32x in an array (rows stored in no order: 1.50x, 1.41x)."""
        return [f"set perfect_ht_threshold = {min(16, max(12, groups.bit_length()))}"]

    def decoding_sums(self, key: str, row_hash: str) -> list[str]:
        """The sums per key bucket that name a bucket's one differing row (:mod:`wap.audit.buckets`): of the
        integer ``key`` times the low 16 bits of ``row_hash``, and of those bits. BIGINT products (the caller keeps
        keys under 2^46), summed as HUGEINT: 0.1x the floor at 10M rows, where 128-bit products cost 0.4x."""
        low = f"cast({row_hash} & 65535 as bigint)"
        return [f"sum(cast({key} as bigint) * {low})", f"sum({low})"]

    def key_samples(
        self, tables: Sequence[tuple[str, str, Sequence[int]]], column: str, data_type: str
    ) -> tuple[str, list[Any]] | None:
        """The key ``column`` at given row positions of tables: one ``(table's index, position, key)`` row per
        position that holds a row. ``tables``: (schema, table, positions). Each position is a point read (DuckDB
        reads one vector for a ``rowid`` filter). None for keys that are not integers (only they are split).
        :mod:`wap.audit.key_ranges` tells from these whether a table is stored in key order."""
        if data_type.upper() not in _INTEGER_TYPES:
            return None
        reads, params = [], []
        for index, (schema, table, positions) in enumerate(tables):
            for position in positions:
                reads.append(
                    f"select {index}, rowid, {quote(column)} from {self.relation(schema, table)} "
                    f"where rowid = {self.placeholder}"
                )
                params.append(position)
        return " union all ".join(reads), params


class SnowflakeDialect(Dialect):
    """Snowflake's SQL, run against fakesnow in the tests (``tests/include/wap/audit/test_engine.py``).

    The placeholder is the connector's default paramstyle (``pyformat``), which ``SnowflakeHook`` keeps.
    """

    name = "snowflake"
    placeholder = "%s"
    row_locator = None  # no row id: samples are read back by row hash
    materialized = "as"  # Snowflake decides itself whether to materialize a CTE
    #: No: Snowflake's scans are reads of remote storage, and the bucket pass is itself one scan of each side
    side_pass_first = False

    @staticmethod
    def identifier(name: str) -> str:
        """A configured (validated, unquoted) identifier as Snowflake resolves it: upper case, then quoted.

        dbt-snowflake creates schemas unquoted, so ``develop_dwh`` is ``DEVELOP_DWH`` in the catalog; quoting the
        upper-case form also keeps a reserved word usable.
        """
        return quote(name.upper())

    @classmethod
    def qualified(cls, *identifiers: str) -> str:
        """``"DB"."SCHEMA"."NAME"``: configured identifiers (database, schema, a bundle table) as Snowflake resolves
        them unquoted."""
        return ".".join(cls.identifier(part) for part in identifiers)

    def relation(self, schema: str, table: str) -> str:
        # ``schema`` is a configured name, ``table`` a name read from the catalog (exact case).
        return f"{self.identifier(schema)}.{quote(table)}"

    def one_of(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """An ``IN`` list: the connector binds no list."""
        return f"{column} in ({', '.join(self.placeholder for _ in values)})", list(values)

    def key_samples(
        self, tables: Sequence[tuple[str, str, Sequence[int]]], column: str, data_type: str
    ) -> tuple[str, list[Any]] | None:
        """None: Snowflake prunes micro-partitions itself, and one join is its plan."""
        return None

    def range_type(self, data_type: str) -> str | None:
        """As DuckDB's, for Snowflake's types: ``NUMBER(p,0)`` (every integer type) and ``DATE``."""
        upper = data_type.upper().replace(" ", "")
        if (upper.startswith("NUMBER(") and upper.endswith(",0)")) or upper in ("INTEGER", "BIGINT", "INT"):
            return "integer"
        return "date" if upper == "DATE" else None

    def range_bucket(self, column: str, range_type: str, low: Any, width: int) -> str:
        if range_type == "date":
            offset = f"datediff(day, {self.key_literal(low, range_type)}, {column})"
        else:
            offset = f"({column} - {self.key_literal(low, range_type)})"
        return f"coalesce(floor({offset} / {int(width)}), -1)"

    def hash_bucket(self, columns: Sequence[str], count: int) -> str:
        """``MOD``, not ``%``: the connector's ``pyformat`` reads a ``%`` in a statement with parameters."""
        return f"mod({self.hash_of(columns)}, {int(count)})"

    def key_sample(self, schema: str, table: str, column: str, rows: int) -> tuple[str, list[Any]] | None:
        return f"select {quote(column)} from {self.relation(schema, table)} sample ({int(rows)} rows)", []

    def hash_sum(self, expression: str) -> str:
        """NUMBER(38,0) holds the exact sum (:meth:`sum_text`)."""
        return f"sum(to_number({expression}))"

    def grouping_settings(self, groups: int) -> list[str]:
        """None: Snowflake plans its aggregations itself."""
        return []

    def decoding_sums(self, key: str, row_hash: str) -> list[str]:
        """As DuckDB's, in NUMBER(38,0), with ``MOD(hash, 65536)`` for the low bits (-65535 to 65535 for a signed
        hash; any function of the row hash names the row as well; fakesnow's hash is a DECIMAL, which ``BITAND``
        refuses)."""
        low = f"mod({row_hash}, 65536)"
        return [f"sum(to_number({key}) * {low})", f"sum({low})"]

    def view_definitions(self, schema: str) -> tuple[str, list[str]]:
        return (
            "select table_name, view_definition from information_schema.views "
            f"where table_catalog = current_database() and lower(table_schema) = {self.placeholder}",
            [schema.lower()],
        )

    def catalog(self, schemas: Sequence[str]) -> tuple[str, list[str]]:
        """As the base query, with NUMBER columns typed ``NUMBER(p,s)`` so that a precision or scale change shows.

        Views are looked up in ``information_schema.views`` too: on Snowflake ``information_schema.tables`` lists
        them already (``coalesce`` keeps its ``table_type``), fakesnow lists only tables there. A table's
        ``row_count`` is exact (micro-partition metadata); a view has none.
        """
        marks = ", ".join(self.placeholder for _ in schemas)
        sql = (
            "select c.table_schema, c.table_name, coalesce(t.table_type, case when v.table_name is not null "
            "then 'VIEW' end), c.column_name, case when c.data_type = 'NUMBER' then 'NUMBER(' || "
            "to_varchar(c.numeric_precision) || ',' || to_varchar(c.numeric_scale) || ')' else c.data_type end, "
            "case when v.table_name is null then t.row_count end "
            "from information_schema.columns c "
            f"left join information_schema.tables t on {self._same_relation('t', 'c')} "
            f"left join information_schema.views v on {self._same_relation('v', 'c')} "
            f"where c.table_catalog = current_database() and lower(c.table_schema) in ({marks}) "
            "and (t.table_name is not null or v.table_name is not null) "
            "order by c.table_schema, c.table_name, c.ordinal_position"
        )
        return sql, [schema.lower() for schema in schemas]

    @staticmethod
    def _same_relation(alias: str, other: str) -> str:
        parts = ("table_catalog", "table_schema", "table_name")
        return " and ".join(f"{alias}.{part} = {other}.{part}" for part in parts)

    def content_hash(self, columns: Sequence[str]) -> str:
        """A sum of row hashes, like DuckDB's: order-independent, counts duplicates, hashes NULLs as values.

        Not ``HASH_AGG``, which fakesnow lacks; both are order-independent fingerprints of the rows (NUMBER(38,0)
        holds the sum of 2^64 hashes without overflow). Empty input gives NULL here (HASH_AGG: 0).
        """
        return self.sum_text(self.row_hash(columns))

    def sum_text(self, expression: str) -> str:
        """``sum(expression)`` as text, exact: ``TO_NUMBER`` (NUMBER(38,0)) changes no integer on Snowflake, and
        keeps fakesnow from summing as DOUBLE (its SUM casts an argument of unknown type to DOUBLE)."""
        return f"to_varchar(sum(to_number({expression})))"

    def row_json(self, alias: str, columns: Sequence[str]) -> str:
        return f"to_json({self.key_value(alias, columns)})"

    def sum_text_where(self, expression: str, condition: str) -> str:
        return self.sum_text(f"case when {condition} then {expression} end")

    def multiple_of(self, expression: str, power_of_two: int) -> str:
        return f"bitand({expression}, {int(power_of_two) - 1}) = 0"

    def record(self, fields: Sequence[tuple[str, str]]) -> str:
        """An OBJECT of ``fields`` (NULLs kept; the connector returns its JSON text). Snowflake OBJECTs keep no key
        order: keys come back sorted."""
        pairs = ", ".join(f"{self._literal(name)}, {value}" for name, value in fields)
        return f"object_construct_keep_null({pairs})"

    @staticmethod
    def _literal(text: str) -> str:
        """A string literal: Snowflake reads backslash escapes in single quotes, so backslashes are doubled too."""
        return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"

    def sample(self, value: str, order: str, condition: str, limit: int, *, costly_value: bool = True) -> str:
        """A JSON array of up to ``limit`` values where ``condition``, the ones with the smallest ``order``.

        ``MIN_BY(.., .., n)`` keeps at most ``n`` values while it aggregates (an ``ARRAY_AGG`` of every match
        grows with the diff, up to Snowflake's size limit of one value). Rows failing ``condition`` get a NULL
        order and a NULL value; ``ARRAY_COMPACT`` drops any NULL that comes through. ``TO_JSON`` returns the
        array as JSON text, as the connector returns an ARRAY. ``costly_value`` makes no difference here: without
        a FILTER clause, the CASE is what leaves out the other rows.
        """
        if limit < 1:
            return "null"  # MIN_BY wants a positive count
        return (
            f"to_json(array_compact(min_by(case when {condition} then {value} end, "
            f"case when {condition} then {order} end, {int(limit)})))"
        )


DIALECTS = {"duckdb": Dialect(), "snowflake": SnowflakeDialect()}


def dialect_of(warehouse: Any) -> Dialect:
    """The SQL dialect of a :mod:`wap.warehouse` connection (by its ``kind``)."""
    return DIALECTS[warehouse.kind]
