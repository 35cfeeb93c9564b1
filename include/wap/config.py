"""The one configuration of the WAP bundle: read from the environment, validated, immutable.

Nothing here touches Airflow Variables, connections or the warehouse, so it is safe at DAG parse time.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

#: The project root (the Astro project: dags/, dbt/, include/ ...). This file is include/wap/config.py.
PROJECT_DIR = Path(__file__).resolve().parents[2]

WAREHOUSES = ("duckdb", "snowflake")
#: How the Write stage runs dbt: one `dbt build` watched by a task per node, or a dbt command per node (Cosmos).
WRITE_MODES = ("one_build", "per_model")

# Unquoted identifiers that both Snowflake and DuckDB accept: a letter or underscore, then letters, digits,
# underscores (and `$` on Snowflake only, so not here). Anything else is refused rather than quoted.
_IDENTIFIER = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]{0,254}\Z")
_DAG_ID = re.compile(r"\A[A-Za-z0-9_.-]{1,200}\Z")
_DURATION = re.compile(r"\A(\d+)\s*([smhd]?)\Z")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# A Snowflake account identifier as connections spell it: `myorg-myaccount`, `xy12345.eu-west-1.aws`.
_ACCOUNT = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,254}\Z")
#: The policy file's name in the dbt project (``WAP_POLICY_FILE`` overrides it; ``none`` turns the policy off).
POLICY_FILE = "wap_policy.yml"
_NO_POLICY = ("none", "off")
_BOOLEANS = {"true": True, "yes": True, "1": True, "on": True, "false": False, "no": False, "0": False, "off": False}


def _default_dbt_executable() -> str:
    """dbt beside this Python (the project venv), else whatever `dbt` is on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


class WapError(Exception):
    """Base of the bundle's own errors: each carries a message meant for the person running it."""


class ConfigError(WapError, ValueError):
    """A setting has a value the bundle cannot use; the message names the setting and the value."""


def validate_identifier(value: str, setting: str) -> str:
    """Return ``value`` if it is a plain SQL identifier, else raise :class:`ConfigError` naming it."""
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise ConfigError(
            f"{setting}={value!r} is not a valid SQL identifier: use a letter or '_' followed by letters, "
            "digits or '_' (at most 255 characters, no quotes, dots, spaces or semicolons)"
        )
    return value


def parse_duration(value: str, setting: str) -> timedelta:
    """Parse ``90``, ``90s``, ``30m``, ``24h`` or ``2d`` into a positive :class:`timedelta`."""
    match = _DURATION.match(value.strip().lower())
    if not match or int(match.group(1)) <= 0:
        raise ConfigError(
            f"{setting}={value!r} is not a duration: use a positive whole number of seconds, or a number "
            "followed by s, m, h or d (e.g. 24h)"
        )
    return timedelta(seconds=int(match.group(1)) * _DURATION_UNITS[match.group(2)])


def approval_variable_name(dag_id: str) -> str:
    """The Airflow Variable a reviewer sets to approve or reject a review of ``dag_id``."""
    return f"wap_approval__{dag_id}"


@dataclass(frozen=True)
class WapConfig:
    """Every setting of the bundle. Build it with :func:`load_config`."""

    warehouse: str = "duckdb"
    dag_id: str = "wap_dwh"
    write_schema: str = "develop_dwh"
    prod_schema: str = "dwh"
    landing_database: str | None = None
    snowflake_database: str | None = None
    duckdb_path: Path = PROJECT_DIR / ".wap" / "warehouse.duckdb"
    dbt_project_dir: Path = PROJECT_DIR / "dbt"
    dbt_executable: str = field(default_factory=_default_dbt_executable)
    duckdb_conn_id: str = "duckdb_default"
    snowflake_conn_id: str = "snowflake_default"
    slack_webhook_conn_id: str = "slack_default"
    slack_api_conn_id: str = "slack_api_default"
    warehouse_pool: str = "wap_warehouse"
    review_timeout: timedelta = timedelta(hours=24)
    approval_poke_interval: timedelta = timedelta(seconds=15)
    grants_on_swap: str = "block"
    sample_rows: int = 5
    slack_channel: str = "#data-reviews"
    slack_outbox: Path = PROJECT_DIR / ".wap" / "slack-outbox.jsonl"
    write_mode: str = "one_build"
    announce_unchanged: bool = False
    snowflake_account: str | None = None
    policy_file: str | None = None
    history_schema: str = "wap_history"
    history_cycles: int = 60

    def __post_init__(self) -> None:
        if self.warehouse not in WAREHOUSES:
            raise ConfigError(
                f"WAP_WAREHOUSE={self.warehouse!r} is not a known warehouse: use one of {', '.join(WAREHOUSES)}"
            )
        if not _DAG_ID.match(self.dag_id):
            raise ConfigError(f"WAP_DAG_ID={self.dag_id!r} is not a valid DAG id (letters, digits, '_', '.', '-')")
        validate_identifier(self.write_schema, "WAP_WRITE_SCHEMA")
        validate_identifier(self.prod_schema, "WAP_PROD_SCHEMA")
        if self.write_schema.lower() == self.prod_schema.lower():
            raise ConfigError(
                f"WAP_WRITE_SCHEMA and WAP_PROD_SCHEMA are both {self.write_schema!r}: "
                "the write schema must differ from production"
            )
        if self.landing_database is not None:
            validate_identifier(self.landing_database, "WAP_LANDING_DATABASE")
        if self.snowflake_database is not None:
            validate_identifier(self.snowflake_database, "WAP_DATABASE")
        if self.warehouse == "snowflake" and self.snowflake_database is None:
            raise ConfigError("WAP_WAREHOUSE='snowflake' needs WAP_DATABASE, the database holding both schemas")
        if not 0 <= self.sample_rows <= 100:
            raise ConfigError(f"WAP_SAMPLE_ROWS={self.sample_rows!r} must be a whole number from 0 to 100")
        if self.grants_on_swap not in ("block", "copy"):
            raise ConfigError(f"WAP_GRANTS_ON_SWAP={self.grants_on_swap!r} must be 'block' or 'copy'")
        if self.write_mode not in WRITE_MODES:
            raise ConfigError(
                f"WAP_WRITE_MODE={self.write_mode!r} is not a write mode: use 'one_build' (one dbt build, a task per "
                "model watching it) or 'per_model' (a dbt command per model and test, each retried on its own)"
            )
        if self.snowflake_account is not None and not _ACCOUNT.match(self.snowflake_account):
            raise ConfigError(
                f"WAP_SNOWFLAKE_ACCOUNT={self.snowflake_account!r} is not a Snowflake account identifier: use the "
                "account of the Snowflake connection, e.g. 'myorg-myaccount' (letters, digits, '-', '_', '.')"
            )
        validate_identifier(self.history_schema, "WAP_HISTORY_SCHEMA")
        if self.history_schema.lower() in (self.write_schema.lower(), self.prod_schema.lower()):
            raise ConfigError(
                f"WAP_HISTORY_SCHEMA={self.history_schema!r} is one of the swapped schemas: the audit history must "
                "live outside the write schema and production, which every publish swaps"
            )
        if not 1 <= self.history_cycles <= 10_000:
            raise ConfigError(f"WAP_HISTORY_CYCLES={self.history_cycles!r} must be a whole number from 1 to 10000")
        if self.review_timeout <= timedelta(0):
            raise ConfigError(f"WAP_REVIEW_TIMEOUT={self.review_timeout!r} must be positive")

    @property
    def approval_variable(self) -> str:
        """The approval Variable of this DAG, ``wap_approval__<dag_id>``."""
        return approval_variable_name(self.dag_id)

    @property
    def policy_path(self) -> Path | None:
        """The review policy's file (it may not exist: then every cycle waits for a reviewer); None when
        ``WAP_POLICY_FILE=none`` turns the policy off. A relative path is in the dbt project."""
        if self.policy_file is None:
            return self.dbt_project_dir / POLICY_FILE
        if self.policy_file.lower() in _NO_POLICY:
            return None
        return self.dbt_project_dir / Path(self.policy_file).expanduser()

    @property
    def warehouse_conn_id(self) -> str:
        """The Airflow connection of the configured warehouse."""
        return self.snowflake_conn_id if self.warehouse == "snowflake" else self.duckdb_conn_id

    @property
    def warehouse_task_pool(self) -> str:
        """Pool of the tasks that open the warehouse: 1 slot on DuckDB (one writer), Airflow's default on Snowflake."""
        return self.warehouse_pool if self.warehouse == "duckdb" else "default_pool"


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value.strip() if value is not None and value.strip() else None


def load_config(env: Mapping[str, str] | None = None) -> WapConfig:
    """Read the configuration from ``env`` (default: the process environment) and validate it.

    Unset or empty variables take the defaults of :class:`WapConfig`. Raises :class:`ConfigError` with
    a message naming the variable and its value when anything is invalid.
    """
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    for field_name, var in (
        ("warehouse", "WAP_WAREHOUSE"),
        ("dag_id", "WAP_DAG_ID"),
        ("write_schema", "WAP_WRITE_SCHEMA"),
        ("prod_schema", "WAP_PROD_SCHEMA"),
        ("landing_database", "WAP_LANDING_DATABASE"),
        ("snowflake_database", "WAP_DATABASE"),
        ("dbt_executable", "WAP_DBT_EXECUTABLE"),
        ("duckdb_conn_id", "WAP_DUCKDB_CONN_ID"),
        ("snowflake_conn_id", "WAP_SNOWFLAKE_CONN_ID"),
        ("slack_webhook_conn_id", "WAP_SLACK_CONN_ID"),
        ("slack_api_conn_id", "WAP_SLACK_API_CONN_ID"),
        ("warehouse_pool", "WAP_WAREHOUSE_POOL"),
        ("slack_channel", "WAP_SLACK_CHANNEL"),
        ("grants_on_swap", "WAP_GRANTS_ON_SWAP"),
        ("write_mode", "WAP_WRITE_MODE"),
        ("snowflake_account", "WAP_SNOWFLAKE_ACCOUNT"),
        ("policy_file", "WAP_POLICY_FILE"),
        ("history_schema", "WAP_HISTORY_SCHEMA"),
    ):
        value = _get(env, var)
        if value is not None:
            values[field_name] = value.lower() if field_name in ("warehouse", "write_mode") else value
    for field_name, var in (
        ("duckdb_path", "WAP_DUCKDB_PATH"),
        ("dbt_project_dir", "WAP_DBT_PROJECT_DIR"),
        ("slack_outbox", "WAP_SLACK_OUTBOX"),
    ):
        value = _get(env, var)
        if value is not None:
            values[field_name] = Path(value).expanduser().resolve()
    samples = _get(env, "WAP_SAMPLE_ROWS")
    if samples is not None:
        if not samples.isdigit():
            raise ConfigError(f"WAP_SAMPLE_ROWS={samples!r} must be a whole number from 0 to 100")
        values["sample_rows"] = int(samples)
    cycles = _get(env, "WAP_HISTORY_CYCLES")
    if cycles is not None:
        if not cycles.isdigit():
            raise ConfigError(f"WAP_HISTORY_CYCLES={cycles!r} must be a whole number from 1 to 10000")
        values["history_cycles"] = int(cycles)
    timeout = _get(env, "WAP_REVIEW_TIMEOUT")
    if timeout is not None:
        values["review_timeout"] = parse_duration(timeout, "WAP_REVIEW_TIMEOUT")
    poke = _get(env, "WAP_APPROVAL_POKE_INTERVAL")
    if poke is not None:
        values["approval_poke_interval"] = parse_duration(poke, "WAP_APPROVAL_POKE_INTERVAL")
    unchanged = _get(env, "WAP_ANNOUNCE_UNCHANGED")
    if unchanged is not None:
        if unchanged.lower() not in _BOOLEANS:
            raise ConfigError(f"WAP_ANNOUNCE_UNCHANGED={unchanged!r} must be true or false")
        values["announce_unchanged"] = _BOOLEANS[unchanged.lower()]
    return WapConfig(**values)  # type: ignore[arg-type]
