"""The Cosmos configuration of the dbt project, shared by every DAG of the bundle.

Rendering reads the manifest that `dbt parse` writes during set-up, so parsing a DAG never runs dbt and
never opens a connection. Execution runs the dbt executable as a subprocess, locally and in the image alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior
from cosmos.profiles import SnowflakeUserPasswordProfileMapping

from wap.dbt_results import push_test_results

if TYPE_CHECKING:
    from wap.config import WapConfig

DBT_PROJECT_NAME = "wap_dwh"
DBT_PROFILE_NAME = "wap_dwh"


def dbt_vars(config: WapConfig) -> dict[str, str]:
    """The dbt vars every invocation gets: where to build, and where the landing data lives."""
    values = {"wap_write_schema": config.write_schema}
    if config.landing_database:
        values["landing_database"] = config.landing_database
    return values


def dbt_env(config: WapConfig) -> dict[str, str]:
    """Environment for the dbt subprocess, read by `dbt/profiles.yml`."""
    return {
        "WAP_WAREHOUSE": config.warehouse,
        "WAP_DUCKDB_PATH": str(config.duckdb_path),
        "WAP_WRITE_SCHEMA": config.write_schema,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }


def project_config(config: WapConfig) -> ProjectConfig:
    return ProjectConfig(
        dbt_project_path=config.dbt_project_dir,
        manifest_path=config.dbt_manifest_path,
        project_name=DBT_PROJECT_NAME,
        install_dbt_deps=False,
        dbt_vars=dbt_vars(config),
        env_vars=dbt_env(config),
    )


def profile_config(config: WapConfig) -> ProfileConfig:
    """DuckDB: the `duckdb` target of dbt/profiles.yml. Snowflake: mapped from the Airflow connection."""
    if config.warehouse == "snowflake":
        return ProfileConfig(
            profile_name=DBT_PROFILE_NAME,
            target_name="snowflake",
            profile_mapping=SnowflakeUserPasswordProfileMapping(
                conn_id=config.snowflake_conn_id,
                profile_args={"database": config.snowflake_database, "schema": config.write_schema},
            ),
        )
    return ProfileConfig(
        profile_name=DBT_PROFILE_NAME,
        target_name="duckdb",
        profiles_yml_filepath=config.dbt_project_dir / "profiles.yml",
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
        invocation_mode=InvocationMode.SUBPROCESS,
        dbt_executable_path=config.dbt_executable,
    )


def operator_args(config: WapConfig) -> dict[str, Any]:
    """Arguments for every dbt task: test counts to XCom for the audit; on DuckDB, the 1-slot pool."""
    return {"callback": push_test_results, "pool": config.warehouse_task_pool}
