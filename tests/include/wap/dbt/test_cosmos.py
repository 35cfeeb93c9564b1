"""The Cosmos configuration: the project and profile names from its dbt_project.yml; DuckDB's profile supplied by
the bundle; Snowflake mapped from ``snowflake_default`` when a task runs (never at parse time), by password or key
pair, into the write schema, tagged with the run."""

from __future__ import annotations

import base64
import json
import shutil
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from cosmos.exceptions import CosmosValueError

from wap.config import WapConfig, load_config
from wap.dbt.cosmos import (
    QUERY_TAG_ENV,
    DuckDBFileProfileMapping,
    SnowflakeConnectionProfileMapping,
    profile_config,
    project_config,
    task_env,
)
from wap.dbt.project import dbt_env, prepared_dir

PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
RUN_ID = "scheduled__2026-03-01T06:00:00+00:00"


def snowflake_config(**env: str) -> WapConfig:
    return load_config({"WAP_WAREHOUSE": "snowflake", "WAP_DATABASE": "analytics", **env})


def set_connection(monkeypatch: pytest.MonkeyPatch, password: str | None = "s3cret-pw", **extra: Any) -> None:
    connection: dict[str, Any] = {"conn_type": "snowflake", "login": "wap_user"}
    if password is not None:
        connection["password"] = password
    connection["extra"] = {"account": "xy12345.eu-west-1", "warehouse": "TRANSFORMING", "role": "TRANSFORMER", **extra}
    monkeypatch.setenv("AIRFLOW_CONN_SNOWFLAKE_DEFAULT", json.dumps(connection))


def snowflake_mapping() -> SnowflakeConnectionProfileMapping:
    mapping = profile_config(snowflake_config()).profile_mapping
    assert isinstance(mapping, SnowflakeConnectionProfileMapping)
    return mapping


# -- DuckDB: the bundle's profile ----------------------------------------------------------------------------------


def test_duckdb_gets_the_bundles_profile_named_as_the_project_asks() -> None:
    config = load_config({})
    profile = profile_config(config)
    assert (profile.profile_name, profile.target_name) == ("wap_dwh", "duckdb")
    assert profile.profiles_yml_filepath is None  # the project's own profiles.yml is not read
    assert isinstance(profile.profile_mapping, DuckDBFileProfileMapping)
    assert profile.profile_mapping.profile_args == {
        "path": str(config.duckdb_path),
        "schema": "develop_dwh",
        "threads": 4,
    }
    assert task_env(config) == dbt_env(config)
    assert QUERY_TAG_ENV not in project_config(config).env_vars
    assert project_config(config).project_name == "wap_dwh"


def test_the_duckdb_profile_file_cosmos_writes(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_DUCKDB_DEFAULT", json.dumps({"conn_type": "duckdb", "extra": {"threads": 2}}))
    config = load_config({"WAP_DUCKDB_PATH": str(tmp_path / "w.duckdb"), "WAP_WRITE_SCHEMA": "develop_dwh"})
    with profile_config(config).ensure_profile(desired_profile_path=tmp_path / "profiles.yml") as (path, env):
        document = yaml.safe_load(path.read_text())
    assert document["wap_dwh"]["target"] == "duckdb"
    assert document["wap_dwh"]["outputs"]["duckdb"] == {
        "type": "duckdb",
        "threads": 4,
        "path": str(tmp_path / "w.duckdb"),
        "schema": "develop_dwh",
        "settings": {"threads": 2},
    }
    assert env == {}


def test_another_project_brings_its_own_names(tmp_path) -> None:
    (tmp_path / "dbt_project.yml").write_text("name: jaffle_shop\nprofile: shop\n")
    config = load_config({"WAP_DBT_PROJECT_DIR": str(tmp_path)})
    prepared = prepared_dir(config)
    (prepared / "target").mkdir(parents=True)  # as `wap dbt prepare` leaves it
    (prepared / "target" / "manifest.json").write_text('{"nodes": {}}')
    try:
        assert project_config(config).project_name == "jaffle_shop"
        assert profile_config(config).profile_name == "shop"
        assert project_config(config).dbt_project_path == prepared
        assert profile_config(snowflake_config(WAP_DBT_PROJECT_DIR=str(tmp_path))).profile_name == "shop"
    finally:
        shutil.rmtree(prepared)


# -- Snowflake: which Cosmos mapping, and what it renders ---------------------------------------------------------


def test_building_the_snowflake_profile_reads_no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """DAG parsing must not need the connection: it is read when a task renders the profile."""
    monkeypatch.delenv("AIRFLOW_CONN_SNOWFLAKE_DEFAULT", raising=False)
    profile = profile_config(snowflake_config())
    assert (profile.profile_name, profile.target_name) == ("wap_dwh", "snowflake")
    assert profile.get_profile_type() == "snowflake"
    from airflow.sdk.exceptions import AirflowNotFoundException

    with pytest.raises(AirflowNotFoundException, match="snowflake_default"):  # only now; it is not defined here
        _ = profile.profile_mapping.profile


def test_user_and_password(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch)
    mapping = snowflake_mapping()
    assert type(mapping.mapping).__name__ == "SnowflakeUserPasswordProfileMapping"
    assert mapping.profile == {
        "type": "snowflake",
        "account": "xy12345.eu-west-1",
        "user": "wap_user",
        "password": "{{ env_var('COSMOS_CONN_SNOWFLAKE_PASSWORD') }}",
        "warehouse": "TRANSFORMING",
        "role": "TRANSFORMER",
        "database": "analytics",
        "schema": "develop_dwh",
        "query_tag": "{{ env_var('WAP_QUERY_TAG', '') }}",
        "threads": 4,
    }
    assert mapping.env_vars == {"COSMOS_CONN_SNOWFLAKE_PASSWORD": "s3cret-pw"}
    assert mapping.can_claim_connection()


def test_the_profile_file_holds_no_secret(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    set_connection(monkeypatch, password="p@ss-not-in-files")
    with profile_config(snowflake_config()).ensure_profile(desired_profile_path=tmp_path / "profiles.yml") as (
        path,
        env,
    ):
        text = path.read_text()
    assert "p@ss-not-in-files" not in text and "COSMOS_CONN_SNOWFLAKE_PASSWORD" in text
    assert env == {"COSMOS_CONN_SNOWFLAKE_PASSWORD": "p@ss-not-in-files"}


@pytest.mark.parametrize(
    ("extra", "password", "mapping_name", "secrets"),
    [
        ({"private_key_content": base64.b64encode(PEM.encode()).decode()}, None,
         "SnowflakePrivateKeyPemProfileMapping", {"COSMOS_CONN_SNOWFLAKE_PRIVATE_KEY": PEM}),
        ({"private_key_content": PEM}, "key-passphrase",
         "SnowflakeEncryptedPrivateKeyPemProfileMapping",
         {"COSMOS_CONN_SNOWFLAKE_PRIVATE_KEY": PEM, "COSMOS_CONN_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": "key-passphrase"}),
        ({"private_key_file": "/keys/rsa_key.p8"}, None, "SnowflakePrivateKeyFilePemProfileMapping", {}),
        ({"private_key_file": "/keys/rsa_key.p8"}, "key-passphrase",
         "SnowflakeEncryptedPrivateKeyFilePemProfileMapping",
         {"COSMOS_CONN_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": "key-passphrase"}),
    ],
)  # fmt: skip
def test_a_private_key_means_key_pair_authentication(
    monkeypatch: pytest.MonkeyPatch, extra: dict, password: str | None, mapping_name: str, secrets: dict
) -> None:
    """As the provider's hook reads the connection: with a key, the password (if any) is the key's passphrase."""
    set_connection(monkeypatch, password=password, **extra)
    mapping = snowflake_mapping()
    assert type(mapping.mapping).__name__ == mapping_name
    assert mapping.env_vars == secrets
    profile = mapping.profile
    assert "password" not in profile
    for name in secrets:  # every secret reaches dbt by an environment variable, never in the file
        field = name.removeprefix("COSMOS_CONN_SNOWFLAKE_").lower()
        assert profile[field] == f"{{{{ env_var('{name}') }}}}"
    if "private_key_file" in str(extra):
        assert profile["private_key_path"] == "/keys/rsa_key.p8"
    assert (profile["database"], profile["schema"], profile["warehouse"]) == (
        "analytics",
        "develop_dwh",
        "TRANSFORMING",
    )


def test_the_old_long_names_of_the_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {"account": "xy12345", "warehouse": "TRANSFORMING", "role": "TRANSFORMER", "private_key_file": "/k.p8"}
    connection = {"conn_type": "snowflake", "login": "wap_user", "password": "key-passphrase"}
    connection["extra"] = {f"extra__snowflake__{name}": value for name, value in extra.items()}
    monkeypatch.setenv("AIRFLOW_CONN_SNOWFLAKE_DEFAULT", json.dumps(connection))
    mapping = snowflake_mapping()
    assert type(mapping.mapping).__name__ == "SnowflakeEncryptedPrivateKeyFilePemProfileMapping"
    assert (mapping.profile["account"], mapping.profile["private_key_path"]) == ("xy12345", "/k.p8")


def test_the_write_schema_and_database_come_from_the_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, database="SOMEWHERE_ELSE", schema="PUBLIC")
    mapping = profile_config(snowflake_config(WAP_WRITE_SCHEMA="staging_build", WAP_DATABASE="dw")).profile_mapping
    assert (mapping.profile["database"], mapping.profile["schema"]) == ("dw", "staging_build")


def test_host_port_and_protocol_pass_through_only_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch)
    assert not {"host", "port", "protocol"} & set(snowflake_mapping().profile)
    set_connection(monkeypatch, host="127.0.0.1", port=8123, protocol="http")
    profile = snowflake_mapping().profile
    assert (profile["host"], profile["port"], profile["protocol"]) == ("127.0.0.1", 8123, "http")
    set_connection(monkeypatch, host="127.0.0.1", port="8123")  # as a connection URI gives it: text
    assert snowflake_mapping().profile["port"] == 8123


def test_a_connection_it_cannot_map_is_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = {"conn_type": "snowflake", "login": "wap_user", "password": "pw", "extra": {"account": "xy12345"}}
    monkeypatch.setenv("AIRFLOW_CONN_SNOWFLAKE_DEFAULT", json.dumps(connection))
    with pytest.raises(CosmosValueError, match=r"'snowflake_default' .* lacks warehouse"):
        _ = snowflake_mapping().profile
    assert not snowflake_mapping().can_claim_connection()
    connection = {"conn_type": "postgres", "login": "wap_user", "password": "pw"}
    monkeypatch.setenv("AIRFLOW_CONN_SNOWFLAKE_DEFAULT", json.dumps(connection))
    with pytest.raises(CosmosValueError, match="'snowflake_default' is of type 'postgres', not 'snowflake'"):
        _ = snowflake_mapping().env_vars


# -- the query tag: per run, per task ---------------------------------------------------------------------------


def write_group(config: WapConfig) -> Any:
    """The write stage as wap_dwh builds it."""
    from airflow.sdk import DAG
    from cosmos import DbtTaskGroup

    from wap.dbt import cosmos as dbt_config

    with DAG("wap_dwh", schedule=None) as dag:
        DbtTaskGroup(
            group_id="write",
            project_config=dbt_config.project_config(config),
            profile_config=dbt_config.profile_config(config),
            execution_config=dbt_config.execution_config(config),
            render_config=dbt_config.render_config(config),
            operator_args=dbt_config.operator_args(config),
        )
    return dag


def test_a_test_of_several_models_runs_after_all_of_them_and_is_counted(tmp_path: Any) -> None:
    from tests.shop_support import SHOP
    from wap.dbt.cosmos import test_task_ids
    from wap.dbt.prepare import prepare

    config = load_config({"WAP_DBT_PROJECT_DIR": str(SHOP), "WAP_DUCKDB_PATH": str(tmp_path / "w.duckdb")})
    prepare(config)
    dag = write_group(config)
    detached = [task for task in dag.tasks if task.task_id.startswith("write.relationships_orders_history")]
    assert len(detached) == 1 and detached[0].task_id.endswith("_test")
    assert {"write.orders_history.run", "write.stg_customers.run"} <= detached[0].upstream_task_ids | {
        upstream for task_id in detached[0].upstream_task_ids for upstream in dag.get_task(task_id).upstream_task_ids
    }
    ids = test_task_ids(dag.task_group.children["write"])
    assert detached[0].task_id in ids and "write.orders_history.test" in ids


@pytest.mark.parametrize("run_id", [RUN_ID, 'manual__it\'s "quoted" <&>'])
def test_each_dbt_task_renders_a_query_tag_naming_its_run(monkeypatch: pytest.MonkeyPatch, run_id: str) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SNOWFLAKE_DEFAULT", raising=False)  # rendering the DAG needs none
    dag = write_group(snowflake_config())
    task = dag.get_task("write.sysselsetting_forholdstall.run")
    task.render_template_fields({"dag": dag, "task": task, "run_id": run_id, "dag_run": SimpleNamespace(conf={})})
    assert json.loads(task.env[QUERY_TAG_ENV]) == {
        "app": "wap",
        "dag_id": "wap_dwh",
        "run_id": run_id,
        "task_id": "write.sysselsetting_forholdstall.run",
    }
    assert task.profile_config.profile_mapping.profile_args["query_tag"] == "{{ env_var('WAP_QUERY_TAG', '') }}"


@pytest.mark.parametrize(
    ("conf", "flag"), [(None, False), ({}, False), ({"full_refresh": True}, True), ({"full_refresh": "true"}, False)]
)
def test_only_a_full_refresh_conf_of_true_adds_the_flag(conf: dict | None, flag: bool) -> None:
    dag = write_group(load_config())
    for task_id in ("write.sysselsetting_forholdstall.run", "write.stg_ssb__befolkning_sysselsetting.run"):
        task = dag.get_task(task_id)
        task.render_template_fields({"dag": dag, "task": task, "run_id": RUN_ID, "dag_run": SimpleNamespace(conf=conf)})
        assert ("--full-refresh" in task.add_cmd_flags()) is flag, task_id


def test_dbt_reads_the_query_tag_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """dbt renders profiles natively; a JSON tag must stay a string (dbt-snowflake's ``query_tag: str``)."""
    import os

    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    tag = json.dumps({"app": "wap", "run_id": RUN_ID})
    renderer = ProfileRenderer({})
    query_tag = profile_config(snowflake_config()).profile_mapping.profile_args["query_tag"]
    monkeypatch.setenv(QUERY_TAG_ENV, tag)
    set_invocation_context(os.environ)
    assert renderer.render_value(query_tag) == tag
    monkeypatch.delenv(QUERY_TAG_ENV)
    set_invocation_context(os.environ)
    assert renderer.render_value(query_tag) == ""  # dbt-snowflake then sets no QUERY_TAG
