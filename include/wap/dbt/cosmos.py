"""The Cosmos configuration of the dbt project, shared by every DAG of the bundle.

The project is whatever ``WAP_DBT_PROJECT_DIR`` names; its name and profile name come from its own
`dbt_project.yml` (:mod:`wap.dbt.project`), and the bundle supplies the profile (:mod:`wap.dbt.profiles`).
Rendering reads the manifest that `wap dbt prepare` writes during set-up, so parsing a DAG never runs dbt and
never opens a connection; it refuses a project whose nodes would build outside the write schema. Execution runs
the dbt executable as a subprocess, locally and in the image alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior
from cosmos.exceptions import CosmosValueError
from cosmos.profiles import (
    SnowflakeEncryptedPrivateKeyFilePemProfileMapping,
    SnowflakeEncryptedPrivateKeyPemProfileMapping,
    SnowflakePrivateKeyFilePemProfileMapping,
    SnowflakePrivateKeyPemProfileMapping,
    SnowflakeUserPasswordProfileMapping,
)
from cosmos.profiles.base import BaseProfileMapping
from cosmos.profiles.snowflake.base import SnowflakeBaseProfileMapping

from wap.dbt.manifest import check_one_schema
from wap.dbt.profiles import DUCKDB_THREADS, duckdb_profile, duckdb_settings, duckdb_target
from wap.dbt.project import dbt_env, dbt_vars, prepared_project, read_project
from wap.dbt.results import push_test_results

if TYPE_CHECKING:
    from wap.config import WapConfig

#: The target of the profile the bundle supplies, by warehouse kind (what ``target.name`` says in the project).
TARGETS = {"duckdb": "duckdb", "snowflake": "snowflake"}

#: The environment variable the Snowflake profile reads its ``query_tag`` from (dbt-snowflake sets it as the
#: session's QUERY_TAG, so every statement of the task carries it).
QUERY_TAG_ENV = "WAP_QUERY_TAG"
#: Its value in each dbt task: an Airflow template (Cosmos' ``env`` is a templated field), rendered when the task
#: runs, so the tag names this run. JSON, for ``query_history`` filters such as
#: ``try_parse_json(query_tag):run_id::varchar = '<run id>'``. ``tojson`` escapes whatever a run id holds.
QUERY_TAG_TEMPLATE = '{{ {"app": "wap", "dag_id": dag.dag_id, "run_id": run_id, "task_id": task.task_id} | tojson }}'
#: How the profile reads it; unset or empty (dbt run by hand), dbt-snowflake sets no tag.
QUERY_TAG_PROFILE_VALUE = f"{{{{ env_var('{QUERY_TAG_ENV}', '') }}}}"


def task_env(config: WapConfig) -> dict[str, str]:
    """Environment of the Cosmos dbt tasks: :func:`dbt_env`, and on Snowflake the query tag template."""
    env = dbt_env(config)
    if config.warehouse == "snowflake":
        env[QUERY_TAG_ENV] = QUERY_TAG_TEMPLATE
    return env


def project_config(config: WapConfig) -> ProjectConfig:
    """The project at ``WAP_DBT_PROJECT_DIR``, as the bundle's prepared copy (its own ``ref`` for views, see
    :mod:`wap.dbt.prepared`), rendered from the copy's manifest; refused (:class:`~wap.config.ConfigError`) when a
    node would build outside the write schema, so that the DAG does not import and nothing is built."""
    project = prepared_project(config)
    check_one_schema(project.manifest_path, config.write_schema)
    return ProjectConfig(
        dbt_project_path=project.path,
        manifest_path=project.manifest_path,
        project_name=project.name,
        install_dbt_deps=False,
        dbt_vars=dbt_vars(config),
        env_vars=task_env(config),
    )


def profile_config(config: WapConfig) -> ProfileConfig:
    """The profile the project asks for, supplied by the bundle: DuckDB's from the warehouse file and
    ``duckdb_default``'s settings, Snowflake's mapped from ``snowflake_default``. Both build into the write schema.

    On Snowflake the profile builds into the write schema of ``WAP_DATABASE`` and tags every statement with the
    run (:data:`QUERY_TAG_ENV`); account, user, warehouse, role and the credentials come from the connection.
    """
    profile_name = read_project(config.dbt_project_dir).profile
    if config.warehouse == "snowflake":
        return ProfileConfig(
            profile_name=profile_name,
            target_name=TARGETS["snowflake"],
            profile_mapping=SnowflakeConnectionProfileMapping(
                conn_id=config.snowflake_conn_id,
                profile_args={
                    "database": config.snowflake_database,
                    "schema": config.write_schema,
                    "query_tag": QUERY_TAG_PROFILE_VALUE,
                },
            ),
        )
    target = duckdb_target(config)
    return ProfileConfig(
        profile_name=profile_name,
        target_name=TARGETS["duckdb"],
        profile_mapping=DuckDBFileProfileMapping(
            conn_id=config.duckdb_conn_id,
            profile_args={name: target[name] for name in ("path", "schema", "threads")},
        ),
    )


def execution_config(config: WapConfig) -> ExecutionConfig:
    return ExecutionConfig(
        execution_mode=ExecutionMode.LOCAL,
        invocation_mode=InvocationMode.SUBPROCESS,
        dbt_executable_path=config.dbt_executable,
    )


def render_config(config: WapConfig) -> RenderConfig:
    # No Airflow assets from the write stage: develop_dwh is unpublished, so nothing downstream may react
    # to it. Consumers of the published data follow the publish step instead.
    return RenderConfig(
        emit_datasets=False,
        load_method=LoadMode.DBT_MANIFEST,
        test_behavior=TestBehavior.AFTER_EACH,
        # A test of several models (a relationships test, a singular test joining two models) runs once all of them
        # are built, in a task of its own (`<test>_test`), as `dbt build` orders it; attached to one of its models
        # it would run before the others exist.
        should_detach_multiple_parents_tests=True,
        invocation_mode=InvocationMode.SUBPROCESS,
        dbt_executable_path=config.dbt_executable,
    )


#: ``--full-refresh`` for the run, rendered when the task runs: only a conf ``{"full_refresh": true}`` sets it (the
#: ``reset_write`` task refuses any other value before dbt runs). Test tasks ignore it.
FULL_REFRESH_TEMPLATE = "{{ (dag_run.conf or {}).get('full_refresh') is sameas true }}"


def operator_args(config: WapConfig) -> dict[str, Any]:
    """Arguments for every dbt task: test counts to XCom for the audit; on DuckDB, the 1-slot pool; the run's
    ``full_refresh``."""
    return {"callback": push_test_results, "pool": config.warehouse_task_pool, "full_refresh": FULL_REFRESH_TEMPLATE}


def test_task_ids(group: Any) -> list[str]:
    """The dbt test tasks of the write group (``<model>.test`` after each model, ``<test>_test`` for a test of
    several models): the tasks whose test counts the audit collects."""
    from cosmos.operators.local import DbtTestLocalOperator

    return sorted(task.task_id for task in group.iter_tasks() if isinstance(task, DbtTestLocalOperator))


class SnowflakeConnectionProfileMapping(SnowflakeBaseProfileMapping):
    """A Snowflake connection as a dbt profile, by the Cosmos mapping its credentials call for.

    Chosen when the profile is rendered (in the task), never when the DAG is parsed, as the provider's hook reads
    the connection: a ``private_key_content`` or ``private_key_file`` extra means key-pair authentication, and then
    the connection's password, if any, is the key's passphrase; otherwise user and password. Secrets reach dbt as
    environment variables, never in the profile file. The ``protocol`` extra, which no Cosmos mapping reads (a
    proxy or an emulator on plain HTTP), is passed through when present, and a ``port`` given as text becomes a
    number.
    """

    airflow_connection_type: str = "snowflake"
    dbt_profile_type: str = "snowflake"
    required_fields: ClassVar[list[str]] = ["account", "user", "database", "warehouse", "schema"]
    passthrough_extras: ClassVar[tuple[str, ...]] = ("protocol",)

    _mapping: SnowflakeBaseProfileMapping | None = None

    @property
    def mapping(self) -> SnowflakeBaseProfileMapping:
        """The Cosmos mapping for the connection's credentials (the connection is read once, on first use)."""
        if self._mapping is None:
            if self.conn.conn_type != self.airflow_connection_type:
                kind, wanted = self.conn.conn_type, self.airflow_connection_type
                raise CosmosValueError(f"connection {self.conn_id!r} is of type {kind!r}, not {wanted!r}")
            extra = self._extra()
            key = "content" if extra.get("private_key_content") else "file" if extra.get("private_key_file") else ""
            passphrase = bool(self.conn.password)
            mapping_class: type[SnowflakeBaseProfileMapping] = {
                ("content", True): SnowflakeEncryptedPrivateKeyPemProfileMapping,
                ("content", False): SnowflakePrivateKeyPemProfileMapping,
                ("file", True): SnowflakeEncryptedPrivateKeyFilePemProfileMapping,
                ("file", False): SnowflakePrivateKeyFilePemProfileMapping,
            }.get((key, passphrase), SnowflakeUserPasswordProfileMapping)
            mapping = mapping_class(self.conn_id, self.profile_args, dbt_config_vars=self.dbt_config_vars)
            if not mapping.can_claim_connection():
                missing = [name for name in mapping.required_fields if not mapping.get_dbt_value(name)]
                raise CosmosValueError(
                    f"connection {self.conn_id!r} cannot be mapped to a dbt profile by {mapping_class.__name__}: "
                    f"it lacks {', '.join(missing) or 'a required field'} (extras: account, warehouse; "
                    "login; password, or a private_key_content / private_key_file extra)"
                )
            self._mapping = mapping
        return self._mapping

    def _extra(self) -> dict[str, Any]:
        """The connection's extras, with the long ``extra__snowflake__`` names shortened as Cosmos does."""
        return {key.replace("extra__snowflake__", "", 1): value for key, value in self.conn.extra_dejson.items()}

    def can_claim_connection(self) -> bool:
        try:
            return self.mapping.can_claim_connection()
        except CosmosValueError:
            return False

    @property
    def profile(self) -> dict[str, Any]:
        extra = self._extra()
        profile = {**self.mapping.profile, **{name: extra[name] for name in self.passthrough_extras if extra.get(name)}}
        if isinstance(profile.get("port"), str) and profile["port"].strip().isdigit():
            profile["port"] = int(profile["port"])  # extras from a URI are text; dbt-snowflake wants a number
        return profile

    @property
    def env_vars(self) -> dict[str, str]:
        return self.mapping.env_vars


class DuckDBFileProfileMapping(BaseProfileMapping):
    """The embedded warehouse as a dbt profile for Cosmos: the file and schema from ``profile_args``, the DuckDB
    settings from the extras of the ``duckdb_default`` connection (read in the task, never at parse time). A
    missing default connection means DuckDB's defaults, as for the bundle's own DuckDB hook."""

    airflow_connection_type: str = "duckdb"
    dbt_profile_type: str = "duckdb"
    required_fields: ClassVar[list[str]] = ["path", "schema"]

    def can_claim_connection(self) -> bool:
        return all(self.profile_args.get(name) for name in self.required_fields)

    def _extra(self) -> dict[str, Any]:
        from airflow.exceptions import AirflowNotFoundException

        try:
            return dict(self.conn.extra_dejson)
        except AirflowNotFoundException:
            return {}

    def _profile(self, settings: dict[str, Any] | None) -> dict[str, Any]:
        args = self.profile_args
        return duckdb_profile(args["path"], args["schema"], settings, threads=args.get("threads", DUCKDB_THREADS))

    @property
    def profile(self) -> dict[str, Any]:
        return self._profile(duckdb_settings(self._extra()))

    @property
    def mock_profile(self) -> dict[str, Any]:
        return self._profile(None)
