"""The image and the local venv install the same pinned packages: Dockerfile, requirements files and .venv agree.

Bumping one pin and not the other (the Runtime tag and apache-airflow, duckdb in the Airflow and the dbt
environments, a requirement and .venv) fails here.
"""

from __future__ import annotations

import importlib.metadata
import re
import shlex
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from wap.config import PROJECT_DIR, load_config

AIRFLOW_REQUIREMENTS = PROJECT_DIR / "requirements.txt"  # the image's Airflow environment (Astro's ONBUILD)
DBT_REQUIREMENTS = PROJECT_DIR / "requirements-dbt.txt"  # the image's dbt venv
DEV_REQUIREMENTS = PROJECT_DIR / "requirements-dev.txt"  # Airflow itself and the test tools, locally only
REQUIREMENT_FILES = (AIRFLOW_REQUIREMENTS, DBT_REQUIREMENTS, DEV_REQUIREMENTS)
DOCKERFILE = PROJECT_DIR / "Dockerfile"
IMAGE_PROJECT_DIR = "/usr/local/airflow"  # where Astro's ONBUILD copies the project (AIRFLOW_HOME)

# Astro Runtime build -> the Apache Airflow it ships (the Runtime release notes; the version catalog the Astro
# CLI reads). Moving the Dockerfile's tag to a build not listed here fails: add its line from the release notes.
RUNTIME_AIRFLOW = {"3.3-7": "3.3.1", "3.3-8": "3.3.2"}
_RUNTIME_IMAGE = re.compile(
    r"\Aastrocrpublic\.azurecr\.io/runtime:(?P<build>(?P<series>\d+\.\d+)-\d+)(?:-python-(?P<python>\d+\.\d+))?\Z"
)
_PIN = re.compile(r"\A(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[A-Za-z0-9_,.-]+\])?==(?P<version>[A-Za-z0-9.+!-]+)\Z")


# -- reading the files ------------------------------------------------------------------------------------------
def requirement_lines(path: Path) -> list[str]:
    """The requirements of ``path``, without comments and blank lines."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def pins(path: Path) -> dict[str, str]:
    """``{canonical name: version}`` of the ``name==version`` lines of ``path``."""
    found = {}
    for line in requirement_lines(path):
        match = _PIN.match(line)
        if match:
            found[canonicalize_name(match["name"])] = match["version"]
    return found


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order, continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), " ".join(arguments.split())))
        pending = ""
    return instructions


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, arguments in dockerfile_instructions():
        if keyword == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(arguments))
    return env


def dockerfile_runs() -> list[str]:
    return [arguments for keyword, arguments in dockerfile_instructions() if keyword == "RUN"]


def runtime_image() -> re.Match[str]:
    images = [arguments.split()[0] for keyword, arguments in dockerfile_instructions() if keyword == "FROM"]
    assert images, "the Dockerfile has no FROM"
    match = _RUNTIME_IMAGE.match(images[-1])
    assert match, f"the Dockerfile's base {images[-1]!r} is not an Astro Runtime 3 image (runtime:<x.y-n>)"
    return match


def dbt_venv() -> str:
    """The directory of the dbt virtual environment the Dockerfile creates."""
    for run in dockerfile_runs():
        match = re.search(r"\bpython3? -m venv (\S+)", run)
        if match:
            return match.group(1).rstrip("/")
    pytest.fail("the Dockerfile creates no virtual environment for dbt (python -m venv ...)")


def venv_site_packages() -> Path:
    candidates = sorted((PROJECT_DIR / ".venv" / "lib").glob("python3*/site-packages"))
    if not candidates:
        pytest.skip("no .venv here: `make setup` creates it")
    return candidates[-1]


# -- the requirements files -------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", REQUIREMENT_FILES, ids=lambda path: path.name)
def test_every_requirement_is_pinned_exactly(path: Path) -> None:
    unpinned = [line for line in requirement_lines(path) if not _PIN.match(line)]
    assert not unpinned, f"{path.name}: pin these with == (one requirement a line, no ranges, no -r/-e): {unpinned}"


def test_no_package_is_pinned_at_two_versions() -> None:
    versions: dict[str, dict[str, str]] = {}
    for path in REQUIREMENT_FILES:
        lines = [line for line in requirement_lines(path) if _PIN.match(line)]
        names = [canonicalize_name(_PIN.match(line)["name"]) for line in lines]  # type: ignore[index]
        assert len(names) == len(set(names)), f"{path.name} names a package twice: {sorted(names)}"
        for name, version in pins(path).items():
            versions.setdefault(name, {})[path.name] = version
    disagreeing = {name: where for name, where in versions.items() if len(set(where.values())) > 1}
    assert not disagreeing, f"pinned at different versions in different files: {disagreeing}"


def test_dbt_is_only_in_the_dbt_environment() -> None:
    dbt_pins = pins(DBT_REQUIREMENTS)
    assert {"dbt-core", "dbt-snowflake", "dbt-duckdb"} <= dbt_pins.keys()
    in_airflow = sorted(name for name in pins(AIRFLOW_REQUIREMENTS) if name.startswith("dbt-"))
    assert not in_airflow, f"dbt belongs in requirements-dbt.txt (its own venv in the image), not here: {in_airflow}"
    assert "apache-airflow" not in pins(AIRFLOW_REQUIREMENTS), "the Runtime image ships Airflow: pin it in -dev only"


def test_dbt_and_the_bundle_open_the_warehouse_with_the_same_drivers() -> None:
    """A DuckDB file must be read by the DuckDB version that wrote it; dbt writes, the audit and publish read."""
    airflow, dbt = pins(AIRFLOW_REQUIREMENTS), pins(DBT_REQUIREMENTS)
    for name in ("duckdb", "snowflake-connector-python"):
        assert name in airflow and name in dbt, f"pin {name} in both requirements.txt and requirements-dbt.txt"
        assert airflow[name] == dbt[name]


# -- the Dockerfile ---------------------------------------------------------------------------------------------
def test_the_runtime_image_ships_the_pinned_airflow() -> None:
    airflow = pins(DEV_REQUIREMENTS)["apache-airflow"]
    image = runtime_image()
    assert image["build"] in RUNTIME_AIRFLOW, (
        f"Astro Runtime {image['build']} is not in RUNTIME_AIRFLOW: add the Airflow version it ships "
        "(Runtime release notes) so this test can check it against requirements-dev.txt"
    )
    assert RUNTIME_AIRFLOW[image["build"]] == airflow, (
        f"the Dockerfile's Astro Runtime {image['build']} ships Airflow {RUNTIME_AIRFLOW[image['build']]}, "
        f"requirements-dev.txt pins apache-airflow=={airflow}: move one to the other"
    )
    release = Version(airflow).release
    assert image["series"] == f"{release[0]}.{release[1]}", "the Runtime tag's line is not Airflow's major.minor"


def test_the_image_python_can_run_the_pinned_dbt() -> None:
    """dbt-core 1.11 caps mashumaro below 3.15, which cannot build dbt's serializers on Python 3.14 (Runtime
    3.3's default): the image must name an older Python flavour until dbt lifts the cap."""
    mashumaro = next(
        Requirement(text) for text in importlib.metadata.requires("dbt-core") or [] if text.startswith("mashumaro")
    )
    if "3.16" in mashumaro.specifier:
        return
    python = runtime_image()["python"]
    assert python is not None, "name a Python flavour below 3.14 in the tag (runtime:<build>-python-3.12)"
    assert Version(python) < Version("3.14"), f"dbt-core needs {mashumaro}: Python {python} cannot run it"


def test_dbt_has_its_own_venv_in_the_image_installed_from_requirements_dbt() -> None:
    venv = dbt_venv()
    installs = [run for run in dockerfile_runs() if f"{venv}/bin/pip install" in run]
    assert installs, f"nothing is installed into {venv} with its own pip"
    assert any(re.search(r"-r \S*requirements-dbt\.txt\b", run) for run in installs), (
        f"{venv} must install requirements-dbt.txt, the file that pins dbt-core and dbt-snowflake"
    )
    assert not any("requirements.txt" in run.replace("requirements-dbt.txt", "") for run in dockerfile_runs()), (
        "Astro's ONBUILD installs requirements.txt into Airflow's Python; the Dockerfile must not install it again"
    )


def test_the_image_renders_and_runs_with_the_venvs_dbt() -> None:
    env = dockerfile_env()
    venv = dbt_venv()
    assert env.get("WAP_DBT_EXECUTABLE") == f"{venv}/bin/dbt", "ENV WAP_DBT_EXECUTABLE must be the venv's dbt"
    assert env.get("WAP_DBT_PROJECT_DIR") == f"{IMAGE_PROJECT_DIR}/dbt"
    runs = dockerfile_runs()
    prepares = [i for i, run in enumerate(runs) if re.search(r"(^|\s)wap dbt prepare(\s|$)", run)]
    assert prepares, "the Dockerfile does not prepare the dbt project (wap dbt prepare: profile, deps, manifest)"
    installs = [i for i, run in enumerate(runs) if re.search(rf"pip install .*-e {IMAGE_PROJECT_DIR}/?(\s|$)", run)]
    assert installs and min(installs) < min(prepares), "wap dbt prepare runs after the wap package is installed"

    from wap.dbt import cosmos as dbt_config

    config = load_config(
        {"WAP_DBT_EXECUTABLE": env["WAP_DBT_EXECUTABLE"], "WAP_DBT_PROJECT_DIR": env["WAP_DBT_PROJECT_DIR"]}
    )
    assert config.dbt_executable == env["WAP_DBT_EXECUTABLE"]
    assert config.dbt_project_dir == Path(f"{IMAGE_PROJECT_DIR}/dbt")  # prepare and the DAG read the same project
    execution, render = dbt_config.execution_config(config), dbt_config.render_config(config)
    assert execution.dbt_executable_path == render.dbt_executable_path == env["WAP_DBT_EXECUTABLE"]
    assert execution.invocation_mode is not None and render.invocation_mode is not None
    assert execution.invocation_mode.name == render.invocation_mode.name == "SUBPROCESS"


def test_the_wap_package_is_installed_into_airflows_python() -> None:
    """Editable: `astro dev start` mounts include/ over the copy, and the package finds dbt/ beside include/."""
    installs = [run for run in dockerfile_runs() if re.search(rf"pip install .*-e {IMAGE_PROJECT_DIR}/?(\s|$)", run)]
    assert installs, f"the Dockerfile must install the project (pyproject.toml) with pip install -e {IMAGE_PROJECT_DIR}"
    assert all("--no-deps" in run for run in installs), "its dependencies are requirements.txt's, already installed"

    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["dependencies"] == [], "pins live in the requirements files, not in pyproject.toml"
    templates = pyproject["tool"]["setuptools"]["package-data"]["wap.ui"]
    assert any((PROJECT_DIR / "include" / "wap" / "ui").glob(pattern) for pattern in templates)


def test_the_astro_build_context_has_what_the_image_needs() -> None:
    """Astro's ONBUILD copies packages.txt and requirements.txt (both must exist), then the whole context."""
    assert (PROJECT_DIR / "packages.txt").is_file(), "Astro's ONBUILD copies packages.txt: keep the (empty) file"
    ignored = set(requirement_lines(PROJECT_DIR / ".dockerignore"))
    assert {".venv", ".wap", "dbt/target", "dbt_venv"} <= ignored, (
        "local venvs, the local prepared project and manifests stay out of the image"
    )
    needed = {"requirements.txt", "requirements-dbt.txt", "packages.txt", "pyproject.toml", "dbt", "include", "plugins"}
    assert not needed & ignored


# -- the local venv ---------------------------------------------------------------------------------------------
def test_the_makefile_installs_every_requirements_file() -> None:
    makefile = (PROJECT_DIR / "Makefile").read_text(encoding="utf-8")
    target = re.search(r"^\$\(VENV\)/\.installed:(.*)$", makefile, re.MULTILINE)
    assert target, "the Makefile has no $(VENV)/.installed target"
    installed = set(re.findall(r"-r (requirements[\w-]*\.txt)", makefile))
    on_disk = {path.name for path in PROJECT_DIR.glob("requirements*.txt")}
    assert installed == on_disk, f"`make setup` installs {sorted(installed)}, the project has {sorted(on_disk)}"
    assert on_disk <= set(target.group(1).split()), "a changed requirements file must re-run the install"


def test_the_venv_holds_exactly_the_pinned_versions() -> None:
    site = venv_site_packages()
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions(path=[str(site)])
    }
    expected = {name: version for path in REQUIREMENT_FILES for name, version in pins(path).items()}
    wrong = {
        name: f"pinned {version}, installed {installed.get(name, 'nothing')}"
        for name, version in expected.items()
        if installed.get(name) != version
    }
    assert not wrong, f".venv does not match the pins (run `make setup`): {wrong}"


def test_the_local_default_dbt_is_the_one_beside_python() -> None:
    """Without WAP_DBT_EXECUTABLE (the local set-up), Cosmos runs the dbt `make setup` installed into .venv."""
    import sys

    beside = Path(sys.executable).parent / "dbt"
    config = load_config({})
    assert config.dbt_executable == (str(beside) if beside.exists() else "dbt")
