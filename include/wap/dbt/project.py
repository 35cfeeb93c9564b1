"""The team's dbt project as the bundle sees it: its name and profile from its own `dbt_project.yml`.

The bundle builds whatever project ``WAP_DBT_PROJECT_DIR`` names (default: the demo in ``dbt/``) and supplies the
profile itself (:mod:`wap.dbt.profiles`), so the project needs no ``profiles.yml`` and nothing added to it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from wap.config import PROJECT_DIR, ConfigError

if TYPE_CHECKING:
    from wap.config import WapConfig

PROJECT_FILE = "dbt_project.yml"


@dataclass(frozen=True)
class DbtProject:
    """What the bundle reads of a dbt project: where it is, what it is called, which profile it asks for."""

    path: Path
    name: str
    profile: str
    target_path: str = "target"
    packages_install_path: str = "dbt_packages"

    @property
    def manifest_path(self) -> Path:
        """The manifest `dbt parse` writes at set-up; Cosmos renders the DAG from it."""
        return self.path / self.target_path / "manifest.json"


def prepared_dir(config: WapConfig) -> Path:
    """Where `wap dbt prepare` makes the bundle's prepared copy of the configured project (:mod:`wap.dbt.prepared`):
    under the bundle's ``.wap/``, one directory per project (by name and path), so that preparing another project
    never replaces this one's."""
    path = config.dbt_project_dir.resolve()
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    return PROJECT_DIR / ".wap" / "dbt-projects" / f"{path.name}-{digest}"


def prepared_project(config: WapConfig) -> DbtProject:
    """The prepared copy the Write stage builds and the DAG renders from: the configured project's names, the
    copy's path (and its manifest)."""
    project = read_project(config.dbt_project_dir)
    return DbtProject(path=prepared_dir(config), name=project.name, profile=project.profile)


def read_project(path: Path) -> DbtProject:
    """The project at ``path``; :class:`ConfigError` naming ``WAP_DBT_PROJECT_DIR`` when it is not one."""
    file = path / PROJECT_FILE
    if not file.is_file():
        raise ConfigError(f"WAP_DBT_PROJECT_DIR={str(path)!r} holds no {PROJECT_FILE}: point it at a dbt project")
    try:
        document: Any = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{file} cannot be read as YAML: {error}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{file} does not hold a mapping (name:, profile:, ...)")
    name = document.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{file} has no project name (name:)")
    # A project without `profile:` takes its name as the profile name, as dbt does.
    profile = document.get("profile") or name
    if not isinstance(profile, str):
        raise ConfigError(f"{file}: profile: must be a name, not {profile!r}")
    return DbtProject(
        path=path,
        name=name.strip(),
        profile=profile.strip(),
        target_path=str(document.get("target-path") or "target"),
        packages_install_path=str(document.get("packages-install-path") or "dbt_packages"),
    )


def dbt_vars(config: WapConfig) -> dict[str, str]:
    """The dbt vars every invocation gets: where to build, and where the landing data lives."""
    values = {"wap_write_schema": config.write_schema}
    if config.landing_database:
        values["landing_database"] = config.landing_database
    return values


def dbt_env(config: WapConfig) -> dict[str, str]:
    """Environment for the dbt subprocess (the profile itself is the bundle's, see :mod:`wap.dbt.profiles`)."""
    return {"DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}
