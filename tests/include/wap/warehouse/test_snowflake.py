"""SnowflakeWarehouse against fakesnow's server: SnowflakeHook -> the real Snowflake connector -> HTTP.

The connection ``snowflake_default`` comes from ``AIRFLOW_CONN_SNOWFLAKE_DEFAULT`` (``tests/fakesnow_support.py``).
Schemas are created unquoted, as dbt-snowflake creates them (upper case in the catalog); the configuration names
them in lower case, as the README does.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from wap.audit.dialect import DIALECTS, SnowflakeDialect, dialect_of
from wap.audit.engine import DiffEngine
from wap.audit.marker import write_marker
from wap.config import ConfigError, WapConfig, load_config
from wap.local.demo import period_counts
from wap.warehouse import open_warehouse
from wap.warehouse.duckdb import DuckDBWarehouse
from wap.warehouse.snowflake import SnowflakeWarehouse

MARKER_COLUMNS = [
    ("RUN_ID", "TEXT"),
    ("REVIEW_ID", "TEXT"),
    ("RELATION", "TEXT"),
    ("ROW_COUNT", "NUMBER"),
    ("CONTENT_HASH", "TEXT"),
    ("WRITTEN_AT", "TIMESTAMP_NTZ"),
]


def snowflake_config(database: str) -> WapConfig:
    return load_config({"WAP_WAREHOUSE": "snowflake", "WAP_DATABASE": database.lower()})


@pytest.fixture
def warehouse(snowflake_default: str) -> SnowflakeWarehouse:
    """The adapter on a fresh fakesnow database with the two (empty) schemas of the default configuration."""
    warehouse = open_warehouse(snowflake_config(snowflake_default))
    assert isinstance(warehouse, SnowflakeWarehouse)
    with warehouse.session() as query:
        query("create schema develop_dwh", [])
        query("create schema dwh", [])
    return warehouse


# -- choosing the adapter ---------------------------------------------------------------------------------------


def test_open_warehouse_chooses_the_configured_adapter() -> None:
    snowflake = open_warehouse(snowflake_config("analytics"))
    assert isinstance(snowflake, SnowflakeWarehouse)
    assert dialect_of(snowflake) is DIALECTS["snowflake"]
    assert snowflake.database == "analytics"
    assert isinstance(open_warehouse(load_config({})), DuckDBWarehouse)


def test_snowflake_needs_the_database() -> None:
    with pytest.raises(ConfigError, match="WAP_DATABASE"):
        SnowflakeWarehouse(WapConfig())


def test_names_resolve_like_unquoted_identifiers() -> None:
    warehouse = SnowflakeWarehouse(snowflake_config("analytics"))
    assert (
        SnowflakeDialect.qualified(warehouse.database, "develop_dwh", "_wap_marker")
        == '"ANALYTICS"."DEVELOP_DWH"."_WAP_MARKER"'
    )


def test_the_dialect_sql_whose_snowflake_semantics_fakesnow_cannot_show() -> None:
    """fakesnow runs these, but on DuckDB: MIN_BY's handling of NULL orders, HASH's values and OBJECT key order
    are Snowflake's own. The text is pinned so that a change to it is a decision (see the docstrings)."""
    dialect = DIALECTS["snowflake"]
    assert dialect.sample("v", "o", "c", 5) == (
        "to_json(array_compact(min_by(case when c then v end, case when c then o end, 5)))"
    )
    assert dialect.sample("v", "o", "c", 0) == "null"
    assert dialect.content_hash(["a", "b"]) == 'to_varchar(sum(to_number(hash("a", "b"))))'
    assert dialect.row_json("t", ["a", "it's"]) == (
        """to_json(object_construct_keep_null('a', t."a", 'it''s', t."it's"))"""
    )
    assert dialect.relation("develop_dwh", "Mixed Case") == '"DEVELOP_DWH"."Mixed Case"'


# -- session ----------------------------------------------------------------------------------------------------


def test_session_runs_through_the_hook_with_bound_values(warehouse: SnowflakeWarehouse) -> None:
    tricky = ["it's", "%s", "100%", "'; drop table x; --", 'say "hei"', "æøå 😀", "back\\slash", "line\nbreak"]
    marks = ", ".join("%s" for _ in tricky)
    with warehouse.session(read_only=True) as query:
        assert query("select current_database()", []) == [(warehouse.database.upper(),)]
        assert query(f"select {marks}", tricky) == [tuple(tricky)]
        assert query("select %s, %s, %s", [42, None, 1.5]) == [(42, None, 1.5)]
        (row,) = query("select %s::date", [date(2022, 1, 31)])
        assert row == (date(2022, 1, 31),)
        # without values a statement is sent as written: a literal % needs no escaping
        assert query("select '100%'", []) == [("100%",)]


def test_a_session_is_one_connection(warehouse: SnowflakeWarehouse) -> None:
    with warehouse.session() as query:
        query("set wap_answer = 42", [])
        assert query("select $wap_answer", []) == [(42,)]


# -- marker -----------------------------------------------------------------------------------------------------


def read_marker(warehouse: SnowflakeWarehouse) -> list[tuple]:
    with warehouse.session(read_only=True) as query:
        return query(
            "select run_id, review_id, relation, row_count, content_hash, written_at "
            "from develop_dwh._wap_marker order by relation",
            [],
        )


def test_write_marker_records_the_fingerprints(warehouse: SnowflakeWarehouse) -> None:
    before = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=1)  # TIMESTAMP_NTZ, in UTC
    fingerprints = [("*", None, None), ("sysselsetting_forholdstall", 2880, "-123456789012345678901"), ("v", 0, None)]
    write_marker(warehouse, run_id="manual__2024-06-01T00:00:00", review_id="0123456789ab", fingerprints=fingerprints)

    rows = read_marker(warehouse)
    assert [row[:5] for row in rows] == [
        ("manual__2024-06-01T00:00:00", "0123456789ab", name, count, content_hash)
        for name, count, content_hash in fingerprints
    ]
    assert all(before < row[5] < before + timedelta(minutes=2) for row in rows)
    with warehouse.session(read_only=True) as query:
        columns = query(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'DEVELOP_DWH' and table_name = '_WAP_MARKER' order by ordinal_position",
            [],
        )
    assert columns == MARKER_COLUMNS


def test_write_marker_replaces_the_previous_marker(warehouse: SnowflakeWarehouse) -> None:
    write_marker(warehouse, run_id="run-1", review_id="aaaaaaaaaaaa", fingerprints=[("*", None, None), ("t", 1, "1")])
    write_marker(warehouse, run_id="run-2", review_id="bbbbbbbbbbbb", fingerprints=[("*", None, None), ("u", 2, "2")])
    assert [row[:5] for row in read_marker(warehouse)] == [
        ("run-2", "bbbbbbbbbbbb", "*", None, None),
        ("run-2", "bbbbbbbbbbbb", "u", 2, "2"),
    ]


def test_write_marker_binds_its_values(warehouse: SnowflakeWarehouse) -> None:
    """A relation name is catalog text, a run id Airflow's: neither can break out of the statement."""
    name = "x'); drop table develop_dwh._wap_marker; --"
    write_marker(
        warehouse, run_id="it's %s", review_id="cccccccccccc", fingerprints=[("*", None, None), (name, 3, "h")]
    )
    assert [row[2] for row in read_marker(warehouse)] == ["*", name]
    assert {row[0] for row in read_marker(warehouse)} == {"it's %s"}


def test_write_marker_needs_a_fingerprint(warehouse: SnowflakeWarehouse) -> None:
    with pytest.raises(ValueError, match="at least one fingerprint"):
        write_marker(warehouse, run_id="r", review_id="dddddddddddd", fingerprints=[])


# -- period counts ----------------------------------------------------------------------------------------------


def test_period_counts(warehouse: SnowflakeWarehouse) -> None:
    with warehouse.session() as query:
        query("create table develop_dwh.sysselsetting_forholdstall (region varchar, tid varchar)", [])
        query(
            "insert into develop_dwh.sysselsetting_forholdstall values "
            "('0301', '2022'), ('0301', '2021'), ('1103', '2022'), ('1103', '2020'), ('4601', '2022')",
            [],
        )
    counts = period_counts(warehouse.config, "develop_dwh", "sysselsetting_forholdstall", "tid")
    assert counts == [("2020", 1), ("2021", 1), ("2022", 3)]
    assert period_counts(warehouse.config, "dwh", "sysselsetting_forholdstall", "tid") == []  # no such table


@pytest.mark.parametrize(
    ("schema", "table", "column"),
    [("dwh; drop schema dwh", "t", "c"), ("dwh", 't"', "c"), ("dwh", "t", "c from x --")],
)
def test_period_counts_refuses_anything_but_identifiers(schema: str, table: str, column: str) -> None:
    warehouse = SnowflakeWarehouse(snowflake_config("analytics"))  # refused before any connection
    with pytest.raises(ConfigError, match="not a valid SQL identifier"):
        period_counts(warehouse.config, schema, table, column)


# -- the diff on dbt-style (unquoted) schemas ---------------------------------------------------------------------


def test_diff_engine_on_the_warehouse_session(warehouse: SnowflakeWarehouse) -> None:
    """The names a dbt build leaves (unquoted: upper case), configured in lower case, diffed in one session."""
    with warehouse.session() as query:
        for schema, rows in (("develop_dwh", "(1, 'a'), (2, 'B'), (4, 'd')"), ("dwh", "(1, 'a'), (2, 'b'), (3, 'c')")):
            query(f"create table {schema}.sysselsetting_forholdstall (id int, v varchar)", [])
            query(f"insert into {schema}.sysselsetting_forholdstall values {rows}", [])
        query("create table develop_dwh.ny (id int)", [])
    config = warehouse.config
    with warehouse.session(read_only=True) as query:
        engine = DiffEngine(
            query,
            DIALECTS["snowflake"],
            config.write_schema,
            config.prod_schema,
            keys={"sysselsetting_forholdstall": ["ID"]},
        )
        entries = {entry["name"]: entry for entry in engine.diff()}
    assert set(entries) == {"SYSSELSETTING_FORHOLDSTALL", "NY"}
    entry = entries["SYSSELSETTING_FORHOLDSTALL"]
    assert (entry["status"], entry["diff_method"], entry["key"]) == ("changed", "key", ["ID"])
    assert entry["rows"] == {"before": 3, "after": 3, "added": 1, "removed": 1, "changed": 1}
    assert entry["column_changes"] == {"V": 1}
    assert entry["samples"]["changed"] == [{"before": {"ID": 2, "V": "b"}, "after": {"ID": 2, "V": "B"}}]
    assert entries["NY"]["status"] == "added"


def test_diff_keeps_awkward_column_names_in_samples(warehouse: SnowflakeWarehouse) -> None:
    """Column names become string literals in the sample OBJECTs: quotes and backslashes survive.

    (Numeric columns: fakesnow 0.12.1 fails to create a text column whose name holds a single quote.)
    """
    names = ["id", "back\\slash", "it's", 'si"tat', "år"]
    spec = ", ".join('"' + name.replace('"', '""') + '" int' for name in names)
    with warehouse.session() as query:
        for schema, value in (("develop_dwh", 2), ("dwh", 1)):
            query(f'create table {schema}."odd" ({spec})', [])
            query(f'insert into {schema}."odd" values (%s, %s, %s, %s, %s)', [1, value, value, value, value])
        with_key = DiffEngine(query, DIALECTS["snowflake"], "develop_dwh", "dwh", keys={"odd": ["id"]}).diff()
        without = DiffEngine(query, DIALECTS["snowflake"], "develop_dwh", "dwh").diff()
    (entry,) = with_key
    assert entry["column_changes"] == dict.fromkeys(names[1:], 1)
    new_row, old_row = ({"id": 1, **dict.fromkeys(names[1:], value)} for value in (2, 1))
    assert entry["samples"]["changed"] == [{"before": old_row, "after": new_row}]
    (entry,) = without
    assert entry["samples"]["added"] == [new_row] and entry["samples"]["removed"] == [old_row]


def test_a_percent_in_a_name_survives_bound_values(warehouse: SnowflakeWarehouse) -> None:
    """The keyed diff reads sample rows with bound key values; the connector interpolates the whole statement."""
    with warehouse.session() as query:
        for schema, value in (("develop_dwh", 2), ("dwh", 1)):
            query(f'create table {schema}."vekst %" ("id" int, "andel %s" int)', [])
            query(f'insert into {schema}."vekst %" values (%s, %s)', [1, value])
        assert query("""select '%', %s, '%s', "ID" from (select 1 as id)""", ["x"]) == [("%", "x", "%s", 1)]
        (entry,) = DiffEngine(query, DIALECTS["snowflake"], "develop_dwh", "dwh", keys={"vekst %": ["id"]}).diff()
    assert entry["column_changes"] == {"andel %s": 1}
    assert entry["samples"]["changed"] == [{"before": {"id": 1, "andel %s": 1}, "after": {"id": 1, "andel %s": 2}}]
