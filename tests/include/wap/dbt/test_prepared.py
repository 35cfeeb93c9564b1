"""The bundle's prepared copy: the project linked as it is, the bundle's macros added, packages usable offline."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from wap.config import ConfigError
from wap.dbt.prepared import BUNDLE_MACROS, MACRO_PATH, needs_deps, prepare_copy
from wap.dbt.project import read_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "team" / "analytics"
    (root / "models").mkdir(parents=True)
    (root / "models" / "m.sql").write_text("select 1 as x")
    (root / "dbt_project.yml").write_text("name: analytics\nprofile: team\nmacro-paths: [macros]\n")
    (tmp_path / "team" / "utils").mkdir()
    return root


def test_the_copy_links_the_project_and_adds_the_bundle_macro_path(project: Path, tmp_path: Path) -> None:
    copy = prepare_copy(read_project(project), tmp_path / "copy")
    assert (copy.name, copy.profile) == ("analytics", "team")
    assert (copy.path / "models").resolve() == (project / "models").resolve()
    assert (copy.path / MACRO_PATH).resolve() == BUNDLE_MACROS
    document = yaml.safe_load((copy.path / "dbt_project.yml").read_text())
    assert document["macro-paths"] == ["macros", MACRO_PATH]
    assert not needs_deps(read_project(project), copy), "no packages declared"


def test_local_packages_by_relative_path_are_made_absolute_in_the_copy(project: Path, tmp_path: Path) -> None:
    (project / "packages.yml").write_text("packages:\n  - local: ../utils\n  - package: dbt-labs/dbt_utils\n")
    (project / "package-lock.yml").write_text("packages: []\n")
    copy = prepare_copy(read_project(project), tmp_path / "copy")
    packages = yaml.safe_load((copy.path / "packages.yml").read_text())["packages"]
    assert packages == [{"local": str(tmp_path / "team" / "utils")}, {"package": "dbt-labs/dbt_utils"}]
    assert not (copy.path / "packages.yml").is_symlink() and not (copy.path / "package-lock.yml").is_symlink()
    assert (project / "packages.yml").read_text().startswith("packages:\n  - local: ../utils"), "project unchanged"
    assert needs_deps(read_project(project), copy), "declared and not installed: `dbt deps` into the copy"


def test_packages_the_project_installed_are_linked_and_not_installed_again(project: Path, tmp_path: Path) -> None:
    (project / "packages.yml").write_text("packages:\n  - local: ../utils\n")
    copy = prepare_copy(read_project(project), tmp_path / "copy")
    (copy.path / "dbt_packages").mkdir()  # an earlier `dbt deps` in the copy
    (project / "dbt_packages" / "utils").mkdir(parents=True)
    copy = prepare_copy(read_project(project), tmp_path / "copy")
    assert (copy.path / "dbt_packages").is_symlink()
    assert (copy.path / "dbt_packages").resolve() == (project / "dbt_packages").resolve()
    assert not needs_deps(read_project(project), copy)


def test_a_project_that_overrides_ref_is_refused(project: Path, tmp_path: Path) -> None:
    (project / "macros").mkdir()
    (project / "macros" / "ref.sql").write_text("{% macro ref(name) %}{{ return(builtins.ref(name)) }}{% endmacro %}")
    with pytest.raises(ConfigError, match="overrides ref"):
        prepare_copy(read_project(project), tmp_path / "copy")
