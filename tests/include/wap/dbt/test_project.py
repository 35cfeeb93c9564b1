"""The project's identity comes from its own dbt_project.yml; a directory that is not a project is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR
from wap.config import ConfigError
from wap.dbt.project import read_project


def project(tmp_path: Path, text: str) -> Path:
    (tmp_path / "dbt_project.yml").write_text(text, encoding="utf-8")
    return tmp_path


def test_name_profile_and_paths_come_from_dbt_project_yml(tmp_path: Path) -> None:
    found = read_project(project(tmp_path, "name: jaffle_shop\nprofile: shop\ntarget-path: build\n"))
    assert (found.name, found.profile, found.path) == ("jaffle_shop", "shop", tmp_path)
    assert found.manifest_path == tmp_path / "build" / "manifest.json"


def test_a_project_without_a_profile_gets_one_named_after_it(tmp_path: Path) -> None:
    found = read_project(project(tmp_path, "name: analytics\nconfig-version: 2\n"))
    assert found.profile == "analytics"
    assert found.manifest_path == tmp_path / "target" / "manifest.json"


def test_the_demo_project() -> None:
    demo = read_project(PROJECT_DIR / "dbt")
    assert (demo.name, demo.profile) == ("wap_dwh", "wap_dwh")
    assert not (PROJECT_DIR / "dbt" / "profiles.yml").exists(), "the bundle supplies the profile; none is shipped"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "holds no dbt_project.yml: point it at a dbt project"),
        ("name: [unclosed\n", "cannot be read as YAML"),
        ("- a list\n", "does not hold a mapping"),
        ("profile: p\n", "has no project name"),
        ("name: p\nprofile: [a, b]\n", "profile: must be a name"),
    ],
)
def test_what_is_not_a_project_is_refused_clearly(tmp_path: Path, text: str | None, message: str) -> None:
    if text is not None:
        project(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        read_project(tmp_path)
