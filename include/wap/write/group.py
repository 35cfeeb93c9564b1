"""The Write stage's task group in one-build mode (``WAP_WRITE_MODE=one_build``, the default).

``write.build`` (:class:`~wap.write.watcher.DbtBuildProducer`) and one task per unit of the project
(:mod:`wap.dbt.units`). The unit tasks follow the build task in the graph, with the trigger rule ``always``: they
start with the run and end as soon as dbt has finished their node, and clearing the build with what follows clears
them too. They are not chained to each other: a chain of Airflow dependencies would add a scheduler round (about
3 s here) per level of the project behind dbt; dbt's order is in each unit's docs and in the build's log. The audit
follows the build task alone: its success is one whole build of this run, from the reset.

Built from the prepared copy's manifest at DAG import: no dbt, no connection.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wap.dbt import cosmos as dbt_config
from wap.dbt.manifest import check_one_schema
from wap.dbt.project import dbt_vars, prepared_project
from wap.dbt.units import load_build_units
from wap.write.watcher import PRODUCER_TASK_ID, DbtBuildProducer, DbtUnitWatcher, unit_task_args

if TYPE_CHECKING:
    from airflow.sdk import TaskGroup

    from wap.config import WapConfig


def partial_parse_cache(config: WapConfig) -> Path:
    """Where the build task keeps dbt's ``partial_parse.msgpack`` between runs, under Cosmos' cache directory.

    dbt reparses the whole project when the profile's values or the vars differ from those its file was made with,
    so the directory is one per warehouse target (the DuckDB file, or the Snowflake connection and database) and
    write schema. Until a first run fills it, Cosmos takes the file `wap dbt prepare` made beside the manifest.
    """
    from cosmos import settings

    target = (
        str(config.duckdb_path)
        if config.warehouse == "duckdb"
        else f"{config.snowflake_conn_id}/{config.snowflake_database}"
    )
    identity = "\0".join([config.warehouse, target, config.write_schema, config.dbt_project_dir.as_posix()])
    return (
        Path(settings.cache_dir) / f"{config.dag_id}__one_build__{hashlib.sha256(identity.encode()).hexdigest()[:12]}"
    )


def one_build_group(config: WapConfig, *, retries: int, group_id: str = "write", **group_kwargs: Any) -> TaskGroup:
    """The group: the build task, and a task per unit after it that runs beside it (``always``: it watches)."""
    from airflow.sdk import TaskGroup
    from airflow.task.trigger_rule import TriggerRule
    from cosmos.constants import InvocationMode

    project = prepared_project(config)
    check_one_schema(project.manifest_path, config.write_schema)
    units = load_build_units(project.manifest_path)
    with TaskGroup(group_id=group_id, **group_kwargs) as group:
        producer = DbtBuildProducer(
            task_id=PRODUCER_TASK_ID,
            project_dir=str(project.path),
            profile_config=dbt_config.profile_config(config),
            dbt_executable_path=config.dbt_executable,
            invocation_mode=InvocationMode.SUBPROCESS,
            install_deps=False,
            vars=dbt_vars(config),
            env=dbt_config.task_env(config),
            append_env=True,
            partial_parse=True,
            cache_dir=partial_parse_cache(config),
            manifest_filepath=str(project.manifest_path),
            full_refresh=dbt_config.FULL_REFRESH_TEMPLATE,
            pool=config.warehouse_task_pool,
            retries=retries,
            units=unit_task_args(units),
            doc_md="Resets the write schema, then runs the project as one `dbt build`; the other tasks of the "
            "group show its nodes.",
        )
        for unit in units:
            producer >> DbtUnitWatcher(
                task_id=unit.task_id,
                producer_task_id=producer.task_id,
                node_ids=unit.node_ids,
                producer_retries=retries,
                trigger_rule=TriggerRule.ALWAYS,  # after the build in the graph, yet running beside it
                on_failure_callback=None,  # the build task's failure alert names the node
                doc_md=f"`{unit.unique_id}` and its tests, as the one `dbt build` of `{group_id}.build` ran them; "
                f"dbt built it after: {', '.join(unit.upstream) or 'nothing of the project'}.",
            )
    return group


def producer_task_id(group_id: str = "write") -> str:
    """The build task's id in the DAG: where the audit reads the test counts."""
    return f"{group_id}.{PRODUCER_TASK_ID}"
