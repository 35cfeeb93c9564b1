"""The layers of docs/design.md are enforced: `make lint` runs lint-imports on pyproject.toml's contracts.

Each case copies the `wap` package, adds one import that breaks the architecture, and runs lint-imports on the
copy: the contracts must catch it. The unchanged copy must pass, or the cases would prove nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_copy(tmp_path: Path, module: str | None = None, line: str = "") -> subprocess.CompletedProcess[str]:
    source = tmp_path / "src"
    shutil.copytree(PROJECT_DIR / "include" / "wap", source / "wap", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT_DIR / "pyproject.toml", tmp_path / "pyproject.toml")
    if module is not None:
        path = source / Path(*module.split(".")).with_suffix(".py")
        path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(source)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tmp_path / "pyproject.toml"), "--no-cache"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_package_keeps_every_contract(tmp_path: Path) -> None:
    result = lint_copy(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("wap.audit.stage", "from wap.publish import guards  # noqa", "Stages are layers"),
        ("wap.warehouse.duckdb", "from wap.audit import dialect  # noqa", "Stages are layers"),
        ("wap.config", "import wap.slack  # noqa", "Stages are layers"),
        ("wap.tasks", "from wap.ui import chart  # noqa", "Stages are layers"),
        ("wap.publish.duckdb", "from wap.local import landing  # noqa", "never imports the local machinery"),
        ("wap.audit.engine", "from wap.audit import stage  # noqa", "No import cycles"),
    ],
)
def test_an_import_that_breaks_a_layer_fails_lint(tmp_path: Path, module: str, line: str, broken: str) -> None:
    result = lint_copy(tmp_path, module, line)
    assert result.returncode != 0, result.stdout
    report = " ".join(result.stdout.split())  # lint-imports wraps long contract names
    assert f"{broken}" in report and "BROKEN" in report, result.stdout
