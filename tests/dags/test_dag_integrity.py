"""Every DAG imports without errors or connections, has tags and retries; wap_dwh is wired as designed."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from wap.config import load_config
from wap.dbt.project import prepared_dir, prepared_project

from ..conftest import PROJECT_DIR


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    """The DAGs as deployed by default: the Write stage in one-build mode."""
    return DagBag(dag_folder=str(PROJECT_DIR / "dags"))


@pytest.fixture(scope="module")
def per_model_dagbag() -> DagBag:
    """The DAGs with ``WAP_WRITE_MODE=per_model``: Cosmos' task per dbt command."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WAP_WRITE_MODE", "per_model")
        return DagBag(dag_folder=str(PROJECT_DIR / "dags"))


MODELS = ["stg_ssb__befolkning_sysselsetting", "int_sysselsetting_pivoted", "sysselsetting_forholdstall"]


def test_no_import_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert dagbag.dag_ids, "no DAG was found in dags/"


def test_every_dag_has_tags_owner_and_retries(dagbag: DagBag, per_model_dagbag: DagBag) -> None:
    from wap.write.watcher import DbtUnitWatcher

    for dag_id, dag in [*dagbag.dags.items(), *per_model_dagbag.dags.items()]:
        assert dag.tags, f"{dag_id} has no tags"
        for task in dag.tasks:
            assert task.owner not in ("", "airflow"), f"{dag_id}.{task.task_id} has no owner"
            if isinstance(task, DbtUnitWatcher):  # it reports the build; the build task is what retries
                assert task.retries == 0 and task.producer_retries == dag.get_task("write.build").retries >= 1
            else:
                assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


def test_dag_id_equals_file_name(dagbag: DagBag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.fileloc.endswith(f"/{dag_id}.py")


def test_wap_dwh_runs_one_at_a_time_and_documents_itself(dagbag: DagBag) -> None:
    dag = dagbag.dags["wap_dwh"]
    assert dag.max_active_runs == 1
    assert dag.doc_md and "Write" in dag.doc_md
    assert "wap" in dag.tags


def _manifest_models() -> set[str]:
    manifest = json.loads(prepared_project(load_config()).manifest_path.read_text())
    return {node["name"] for node in manifest["nodes"].values() if node["resource_type"] == "model"}


def test_per_model_write_group_has_one_run_and_one_test_task_per_model(per_model_dagbag: DagBag) -> None:
    dag = per_model_dagbag.dags["wap_dwh"]
    models = _manifest_models()
    assert models == {"stg_ssb__befolkning_sysselsetting", "int_sysselsetting_pivoted", "sysselsetting_forholdstall"}
    write_tasks = {task.task_id for task in dag.tasks if task.task_id.startswith("write.")}
    expected = {f"write.{model}.run" for model in models} | {f"write.{model}.test" for model in models}
    assert write_tasks == expected
    for model in models:
        run, test = dag.get_task(f"write.{model}.run"), dag.get_task(f"write.{model}.test")
        assert test.task_id in run.downstream_task_ids, f"{model}: its test does not follow its run"


def test_per_model_write_tasks_follow_the_dbt_lineage_and_share_the_warehouse_pool(per_model_dagbag: DagBag) -> None:
    dag = per_model_dagbag.dags["wap_dwh"]
    order = ["stg_ssb__befolkning_sysselsetting", "int_sysselsetting_pivoted", "sysselsetting_forholdstall"]
    for upstream, downstream in itertools.pairwise(order):
        assert f"write.{downstream}.run" in dag.get_task(f"write.{upstream}.test").downstream_task_ids
    for task in dag.tasks:
        if task.task_id.startswith("write."):
            assert task.pool == "wap_warehouse"


def test_dbt_tasks_build_into_the_write_schema(dagbag: DagBag, per_model_dagbag: DagBag) -> None:
    assert dagbag.dags["wap_dwh"].get_task("write.build").vars["wap_write_schema"] == "develop_dwh"
    task = per_model_dagbag.dags["wap_dwh"].get_task("write.sysselsetting_forholdstall.run")
    assert task.vars["wap_write_schema"] == "develop_dwh"


def test_parsing_never_runs_dbt(monkeypatch: pytest.MonkeyPatch) -> None:
    # With no dbt executable at all, the DAG still renders: Cosmos reads the manifest from `dbt parse`.
    monkeypatch.setenv("WAP_DBT_EXECUTABLE", "/nonexistent/dbt")
    bag = DagBag(dag_folder=str(PROJECT_DIR / "dags" / "wap_dwh.py"))
    assert bag.import_errors == {}
    assert "write.sysselsetting_forholdstall_run" in bag.dags["wap_dwh"].task_ids


def test_a_bad_setting_is_an_import_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAP_WRITE_SCHEMA", "develop_dwh; drop schema dwh")
    bag = DagBag(dag_folder=str(PROJECT_DIR / "dags" / "wap_dwh.py"))
    (error,) = bag.import_errors.values()
    assert "WAP_WRITE_SCHEMA='develop_dwh; drop schema dwh' is not a valid SQL identifier" in error


def test_per_model_audit_follows_every_write_task_and_uses_the_warehouse_pool(per_model_dagbag: DagBag) -> None:
    dag = per_model_dagbag.dags["wap_dwh"]
    audit = dag.get_task("audit")
    assert audit.pool == "wap_warehouse"
    write_leaves = {
        task.task_id
        for task in dag.tasks
        if task.task_id.startswith("write.") and not any(t.startswith("write.") for t in task.downstream_task_ids)
    }
    assert write_leaves == {"write.sysselsetting_forholdstall.test"}
    assert audit.upstream_task_ids == write_leaves
    assert sorted(audit.op_kwargs["test_task_ids"]) == sorted(t for t in dag.task_ids if t.endswith(".test"))


def test_per_model_the_write_schema_is_reset_after_preflight_and_before_every_dbt_task(
    per_model_dagbag: DagBag,
) -> None:
    dag = per_model_dagbag.dags["wap_dwh"]
    reset = dag.get_task("reset_write")
    assert reset.upstream_task_ids == {"preflight"} and reset.pool == "wap_warehouse"
    write_roots = {
        task.task_id
        for task in dag.tasks
        if task.task_id.startswith("write.") and not any(t.startswith("write.") for t in task.upstream_task_ids)
    }
    assert write_roots and reset.downstream_task_ids == write_roots
    assert all(dag.get_task(task_id).upstream_task_ids == {"reset_write"} for task_id in write_roots)


def test_one_build_group_has_the_build_and_a_task_per_model_with_its_tests(dagbag: DagBag) -> None:
    from wap.write.watcher import DbtBuildProducer, DbtUnitWatcher

    dag = dagbag.dags["wap_dwh"]
    write_tasks = {task.task_id for task in dag.tasks if task.task_id.startswith("write.")}
    assert write_tasks == {"write.build"} | {f"write.{model}_run" for model in MODELS}
    build = dag.get_task("write.build")
    assert isinstance(build, DbtBuildProducer) and build.upstream_task_ids == {"preflight"}
    assert build.downstream_task_ids == {"audit"} | {f"write.{model}_run" for model in MODELS}
    assert build.pool == "wap_warehouse" and build.base_cmd == ["build"] and build.install_deps is False
    manifest = json.loads(prepared_project(load_config()).manifest_path.read_text())
    for model in MODELS:
        unit = dag.get_task(f"write.{model}_run")
        assert isinstance(unit, DbtUnitWatcher) and unit.start_from_trigger
        assert unit.upstream_task_ids == {"write.build"} and unit.trigger_rule == "always", "it runs beside the build"
        tests = {
            uid
            for uid, node in manifest["nodes"].items()
            if node["resource_type"] == "test" and node["depends_on"]["nodes"] == [f"model.wap_dwh.{model}"]
        }
        assert unit.node_ids[0] == f"model.wap_dwh.{model}" and set(unit.node_ids[1:]) == tests and tests
        assert unit.start_trigger_args.trigger_kwargs["producer_task_id"] == "write.build"
        assert unit.pool != "wap_warehouse", "a unit never opens the warehouse"


def test_one_build_audit_follows_the_build_alone(dagbag: DagBag) -> None:
    """The build's success is one whole build of this run; the units only show it (they end right after)."""
    dag = dagbag.dags["wap_dwh"]
    audit = dag.get_task("audit")
    assert audit.upstream_task_ids == {"write.build"}
    assert audit.op_kwargs == {"test_rows_task_id": "write.build"}
    assert "reset_write" not in dag.task_ids, "the build task resets the write schema itself, on every try"


def test_an_unknown_write_mode_is_an_import_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAP_WRITE_MODE", "fast")
    bag = DagBag(dag_folder=str(PROJECT_DIR / "dags" / "wap_dwh.py"))
    (error,) = bag.import_errors.values()
    assert "WAP_WRITE_MODE='fast' is not a write mode" in error


def test_a_project_with_a_node_outside_the_write_schema_does_not_import(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Nothing can be built or published: the DAG import fails, naming the node and what to change."""
    manifest = json.loads(prepared_project(load_config()).manifest_path.read_text())
    mart = manifest["nodes"]["model.wap_dwh.sysselsetting_forholdstall"]
    mart["config"]["schema"], mart["schema"] = "marts", "develop_dwh_marts"
    shutil.copy(PROJECT_DIR / "dbt" / "dbt_project.yml", tmp_path / "dbt_project.yml")
    prepared = prepared_dir(load_config({"WAP_DBT_PROJECT_DIR": str(tmp_path)}))
    (prepared / "target").mkdir(parents=True)  # as `wap dbt prepare` would leave it
    (prepared / "target" / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("WAP_DBT_PROJECT_DIR", str(tmp_path))
    try:
        bag = DagBag(dag_folder=str(PROJECT_DIR / "dags" / "wap_dwh.py"))
    finally:
        shutil.rmtree(prepared)
    (error,) = bag.import_errors.values()
    assert "cannot be published as one schema" in error
    assert "model sysselsetting_forholdstall (models/marts/sysselsetting_forholdstall.sql): schema 'marts'" in error


def test_publish_and_rollback_announce_through_the_alias(dagbag: DagBag, per_model_dagbag: DagBag) -> None:
    from airflow.sdk import AssetAlias

    alias = AssetAlias(name="wap_dwh__published")
    for bag in (dagbag, per_model_dagbag):
        publish = bag.dags["wap_dwh"].get_task("publish")
        assert publish.outlets == [alias] and publish.inlets == [alias]
        assert all(not task.outlets for task in bag.dags["wap_dwh"].tasks if task.task_id != "publish")
    assert dagbag.dags["wap_dwh_rollback"].get_task("rollback").outlets == [alias]


def test_the_example_consumer_is_scheduled_on_the_published_relations_asset(dagbag: DagBag) -> None:
    from wap.publish.assets import relation_asset

    dag = dagbag.dags["example_wap_consumer"]
    asset = relation_asset(load_config(), "sysselsetting_forholdstall")
    assert asset.uri.startswith("duckdb:/") and asset.uri.endswith("/dwh/sysselsetting_forholdstall")
    assert list(dag.timetable.asset_condition.objects) == [asset]
    (task,) = dag.tasks
    assert task.pool == load_config().warehouse_task_pool and task.inlets == [asset]


def test_the_example_consumer_on_snowflake_names_the_account_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAP_WAREHOUSE", "snowflake")
    monkeypatch.setenv("WAP_DATABASE", "ANALYTICS")
    bag = DagBag(dag_folder=str(PROJECT_DIR / "dags" / "example_wap_consumer.py"))
    (error,) = bag.import_errors.values()
    assert "WAP_SNOWFLAKE_ACCOUNT is not set" in error
    monkeypatch.setenv("WAP_SNOWFLAKE_ACCOUNT", "myorg-myaccount")
    bag = DagBag(dag_folder=str(PROJECT_DIR / "dags" / "example_wap_consumer.py"))
    assert bag.import_errors == {}
    (task,) = bag.dags["example_wap_consumer"].tasks
    assert [inlet.uri for inlet in task.inlets] == [
        "snowflake://myorg-myaccount/ANALYTICS/DWH/SYSSELSETTING_FORHOLDSTALL"
    ]


def test_a_bad_review_policy_is_an_import_error_naming_the_file_and_the_place(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    policy = tmp_path / "wap_policy.yml"
    text = "version: 1\nrules:\n  limits:\n    - relations: '*'\n      rows_changed: lots\n"
    policy.write_text(text, encoding="utf-8")
    monkeypatch.setenv("WAP_POLICY_FILE", str(policy))
    bag = DagBag(dag_folder=str(PROJECT_DIR / "dags" / "wap_dwh.py"))
    (error,) = bag.import_errors.values()
    assert f"{policy}: rules.limits[0].rows_changed: expected a count" in error, error


def test_the_demo_policy_tags_the_dag_and_no_policy_leaves_it_untagged(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "review-policy" in DagBag(dag_folder=str(PROJECT_DIR / "dags" / "wap_dwh.py")).dags["wap_dwh"].tags
    monkeypatch.setenv("WAP_POLICY_FILE", "none")
    assert "review-policy" not in DagBag(dag_folder=str(PROJECT_DIR / "dags" / "wap_dwh.py")).dags["wap_dwh"].tags


def test_a_reject_or_timeout_is_announced_and_recorded_in_the_history(dagbag: DagBag) -> None:
    from wap import tasks

    callbacks = dagbag.dags["wap_dwh"].get_task("await_approval").on_skipped_callback
    assert tasks.review_closed in callbacks and any(getattr(c, "kind", None) == "rejected" for c in callbacks)
