"""What a dbt project needs before the DAG can render it: the bundle's prepared copy, profile, packages, manifest.

`wap dbt prepare` (run by the set-up and at image build) makes the prepared copy of the project
(:mod:`wap.dbt.prepared`: the project as it is, plus the bundle's macros), writes the profile the bundle supplies,
installs the
project's packages when it declares any (``packages.yml`` or ``dependencies.yml``: ``local:`` packages and an
already installed ``dbt_packages/`` work offline), parses the project into the manifest Cosmos renders from (with
dbt's ``partial_parse.msgpack`` beside it), and refuses a project that one schema swap cannot publish.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from wap.config import WapError
from wap.dbt.manifest import check_one_schema
from wap.dbt.prepared import needs_deps, prepare_copy
from wap.dbt.profiles import write_profiles
from wap.dbt.project import DbtProject, dbt_env, dbt_vars, prepared_dir, read_project

if TYPE_CHECKING:
    from wap.config import WapConfig

log = logging.getLogger(__name__)


class DbtCommandError(WapError):
    """A dbt command failed; the message carries the end of its output."""


def profiles_dir(config: WapConfig) -> Path:
    """Where the bundle writes the profile for dbt runs outside Airflow (beside the embedded warehouse file)."""
    return config.duckdb_path.parent / "dbt-profiles"


def run_dbt(config: WapConfig, project: DbtProject, *args: str, profiles: Path, variables: dict | None = None) -> str:
    """``dbt <args>`` on ``project`` with the bundle's embedded-warehouse profile in ``profiles`` (see
    :func:`~wap.dbt.profiles.write_profiles`); returns dbt's output."""
    command = [
        config.dbt_executable,
        "--no-use-colors",
        *args,
        "--project-dir",
        str(project.path),
        "--profiles-dir",
        str(profiles),
        "--profile",
        project.profile,
        "--target",
        "duckdb",
        "--vars",
        json.dumps(dbt_vars(config) if variables is None else variables),
    ]
    result = subprocess.run(command, env={**os.environ, **dbt_env(config)}, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DbtCommandError(
            f"`dbt {' '.join(args)}` of {project.path} failed:\n{result.stdout[-4000:]}{result.stderr[-2000:]}"
        )
    return result.stdout


def prepare(config: WapConfig) -> DbtProject:
    """The prepared copy, profile, packages, manifest and one-schema check of the configured project; returns
    the prepared copy (what the Write stage builds)."""
    source = read_project(config.dbt_project_dir)
    project = prepare_copy(source, prepared_dir(config))
    profiles = write_profiles(config, project, profiles_dir(config)).parent
    if needs_deps(source, project):
        run_dbt(config, project, "deps", profiles=profiles)
        log.info("Installed the packages of %s", project.name)
    run_dbt(config, project, "parse", profiles=profiles)
    check_one_schema(project.manifest_path, config.write_schema)
    log.info("Parsed %s into %s", project.name, project.manifest_path)
    return project
