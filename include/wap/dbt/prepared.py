"""The bundle's prepared copy of the project: the project as it is, plus the bundle's own macros.

A dbt project reads macros only from its own macro paths, and only a root-project macro overrides ``ref``. So
the Write stage does not run the team's directory itself but a copy of it made of symbolic links (nothing is
copied or changed in the project), with one more macro path holding the bundle's macros
(``include/wap/dbt/macros``: the ``ref`` that renders a view's refs to its own schema relatively). Its
``dbt_project.yml`` is the project's, with that macro path added; its ``target/`` (the manifest Cosmos renders
from) is its own.

Packages: a ``packages.yml`` or ``dependencies.yml`` naming ``local:`` packages by a relative path gets a copy of
its own with those paths made absolute (they are relative to the project, not to the copy). A project with its
packages installed already (``dbt_packages/``) has them linked, and `dbt deps` is not run (offline); otherwise
`dbt deps` installs them into the copy's own ``dbt_packages/``, never into the project. A ``package-lock.yml`` is
copied, so that `dbt deps` reads the project's pins and writes only the copy's.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from wap.config import ConfigError
from wap.dbt.project import PROJECT_FILE, DbtProject

#: The bundle's macros, linked into the prepared copy under this name.
BUNDLE_MACROS = Path(__file__).resolve().parent / "macros"
MACRO_PATH = "wap_bundle_macros"
#: The files that declare a project's packages, and the lock file `dbt deps` reads and writes.
DEPENDENCY_FILES = ("packages.yml", "dependencies.yml")
LOCK_FILE = "package-lock.yml"
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
    own = {PROJECT_FILE, "target", "logs", MACRO_PATH, project.target_path.strip("/"), *DEPENDENCY_FILES, LOCK_FILE}
    for entry in sorted(project.path.iterdir()):
        if entry.name not in own:
            link = directory / entry.name
            if link.is_dir() and not link.is_symlink():  # packages `dbt deps` put in the copy before the
                shutil.rmtree(link)  # project installed its own
            link.symlink_to(entry.resolve())
    for name in DEPENDENCY_FILES:
        _write_dependencies(project.path / name, directory / name)
    if (project.path / LOCK_FILE).is_file():
        shutil.copyfile(project.path / LOCK_FILE, directory / LOCK_FILE)
    else:
        (directory / LOCK_FILE).unlink(missing_ok=True)
    (directory / MACRO_PATH).symlink_to(BUNDLE_MACROS)
    (directory / PROJECT_FILE).write_text(
        f"# The WAP bundle's prepared copy of {project.path / PROJECT_FILE}: the same, with the bundle's macro path.\n"
        + yaml.safe_dump(document, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    return DbtProject(path=directory, name=project.name, profile=project.profile)


def needs_deps(project: DbtProject, copy: DbtProject) -> bool:
    """Whether `dbt deps` must run in the prepared ``copy``: the project declares packages and has not installed
    them itself (an installed ``dbt_packages/`` is linked into the copy and used as it is, offline)."""
    declared = any((copy.path / name).is_file() for name in DEPENDENCY_FILES)
    return declared and not (project.path / project.packages_install_path).is_dir()


def _write_dependencies(source: Path, target: Path) -> None:
    """The copy's ``packages.yml``/``dependencies.yml``: the project's, with ``local:`` paths absolute."""
    if target.exists() or target.is_symlink():
        target.unlink()
    if not source.is_file():
        return
    text = source.read_text(encoding="utf-8")
    try:
        document: Any = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source} cannot be read as YAML: {error}") from None
    packages = document.get("packages") if isinstance(document, dict) else None
    changed = False
    for package in packages if isinstance(packages, list) else []:
        local = package.get("local") if isinstance(package, dict) else None
        if isinstance(local, str) and not Path(local).is_absolute():
            package["local"] = str((source.parent / local).resolve())
            changed = True
    if changed:
        text = f"# The WAP bundle's copy of {source}, with local: paths absolute.\n" + yaml.safe_dump(
            document, sort_keys=False, allow_unicode=True
        )
    target.write_text(text, encoding="utf-8")


def _refuse_own_ref(project: DbtProject, macro_paths: list[str]) -> None:
    for macro_path in macro_paths:
        for file in sorted((project.path / macro_path).rglob("*.sql")):
            if _REF_OVERRIDE.search(file.read_text(encoding="utf-8", errors="replace")):
                raise ConfigError(
                    f"{file} overrides ref(): the bundle renders a view's refs relatively (so that views read "
                    "production after the swap) with its own ref; remove yours, or fold it into a macro the "
                    "bundle's ref does not shadow"
                )
