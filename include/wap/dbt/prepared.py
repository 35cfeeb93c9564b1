"""The bundle's prepared copy of the project: the project as it is, plus the bundle's own macros.

A dbt project reads macros only from its own macro paths, and only a root-project macro overrides ``ref``. So
the Write stage does not run the team's directory itself but a copy of it made of symbolic links (nothing is
copied or changed in the project), with one more macro path holding the bundle's macros
(``include/wap/dbt/macros``: the ``ref`` that renders a view's refs to its own schema relatively). Its
``dbt_project.yml`` is the project's, with that macro path added; its ``target/`` (the manifest Cosmos renders
from) is its own.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from wap.config import ConfigError
from wap.dbt.project import PROJECT_FILE, DbtProject

#: The bundle's macros, linked into the prepared copy under this name.
BUNDLE_MACROS = Path(__file__).resolve().parent / "macros"
MACRO_PATH = "wap_bundle_macros"
#: Macros of the project that the bundle's macros would collide with.
_REF_OVERRIDE = re.compile(r"{%-?\s*macro\s+ref\s*\(")


def prepare_copy(project: DbtProject, directory: Path) -> DbtProject:
    """Make (or refresh) the prepared copy of ``project`` in ``directory``; returns it as a :class:`DbtProject`."""
    document: Any = yaml.safe_load((project.path / PROJECT_FILE).read_text(encoding="utf-8"))
    macro_paths = [str(path) for path in (document.get("macro-paths") or ["macros"])]
    _refuse_own_ref(project, macro_paths)
    document["macro-paths"] = [*macro_paths, MACRO_PATH]
    document["target-path"] = "target"
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():  # links of an earlier preparation: the project may have changed since
        if entry.is_symlink():
            entry.unlink()
    own = {PROJECT_FILE, "target", "logs", MACRO_PATH, project.target_path.strip("/")}
    for entry in sorted(project.path.iterdir()):
        if entry.name not in own:
            (directory / entry.name).symlink_to(entry.resolve())
    (directory / MACRO_PATH).symlink_to(BUNDLE_MACROS)
    (directory / PROJECT_FILE).write_text(
        f"# The WAP bundle's prepared copy of {project.path / PROJECT_FILE}: the same, with the bundle's macro path.\n"
        + yaml.safe_dump(document, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    return DbtProject(path=directory, name=project.name, profile=project.profile)


def _refuse_own_ref(project: DbtProject, macro_paths: list[str]) -> None:
    for macro_path in macro_paths:
        for file in sorted((project.path / macro_path).rglob("*.sql")):
            if _REF_OVERRIDE.search(file.read_text(encoding="utf-8", errors="replace")):
                raise ConfigError(
                    f"{file} overrides ref(): the bundle renders a view's refs relatively (so that views read "
                    "production after the swap) with its own ref; remove yours, or fold it into a macro the "
                    "bundle's ref does not shadow"
                )
