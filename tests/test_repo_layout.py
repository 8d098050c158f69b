"""The monorepo keeps the shape CONTRIBUTING.md describes: names derived, one shape per plugin package, extras and
tox environments for each, versions in lockstep."""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "packages"
PLUGINS = sorted(
    p.name for p in PACKAGES.iterdir() if p.is_dir() and p.name.startswith("misen-") and p.name != "misen-core"
)


def _project(folder: str) -> dict:  # type: ignore[type-arg]
    return tomllib.loads((PACKAGES / folder / "pyproject.toml").read_text())["project"]


def test_there_are_plugin_packages() -> None:
    assert {"misen-executor-local", "misen-workspace-disk"} <= set(PLUGINS)


@pytest.mark.parametrize("folder", PLUGINS)
def test_plugin_names_are_derived(folder: str) -> None:
    project = _project(folder)
    _, kind, name = folder.split("-", 2)
    assert kind in ("executor", "workspace", "serializers", "env"), f"{folder}: unknown kind {kind!r}"
    assert project["name"] == folder
    import_name = folder.replace("-", "_")
    assert project["entry-points"]["misen"] == {f"{kind}-{name}": f"{import_name}.hooks"}
    src = PACKAGES / folder / "src" / import_name
    for part in ("__init__.py", "hooks.py", "py.typed"):
        assert (src / part).exists(), f"{folder}: missing src/{import_name}/{part}"
    assert (PACKAGES / folder / "README.md").exists()
    assert any((PACKAGES / folder / "tests").glob("test_*.py")), f"{folder}: no tests"


@pytest.mark.parametrize("folder", PLUGINS)
def test_plugin_test_files_are_prefixed(folder: str) -> None:
    # pytest runs with --import-mode=importlib; unique, prefixed names keep failures easy to place.
    prefix = folder.split("-", 1)[1].split("-")[-1]
    for test in (PACKAGES / folder / "tests").glob("test_*.py"):
        assert test.name.startswith(f"test_{prefix}"), f"{folder}: {test.name} should start with test_{prefix}"


def test_test_file_names_are_unique_across_the_repository() -> None:
    seen: dict[str, Path] = {}
    for test in sorted([*PACKAGES.glob("*/tests/**/test_*.py"), *(ROOT / "tests").glob("test_*.py")]):
        assert test.name not in seen, f"{test} and {seen[test.name]} share a name"
        seen[test.name] = test


def test_meta_package_has_an_extra_per_optional_plugin() -> None:
    meta = _project("misen")
    from packaging.requirements import Requirement

    def names(deps: list[str]) -> set[str]:
        return {Requirement(d).name for d in deps}

    required = names(meta["dependencies"])
    extras = meta["optional-dependencies"]
    in_extras = {n for deps in extras.values() for n in names(deps)}
    for folder in PLUGINS:
        assert folder in required or folder in in_extras, f"{folder} is neither a dependency nor an extra of misen"
        if folder not in required:
            name = folder.split("-", 2)[2]
            assert folder in names(extras.get(name, [])), f"misen[{name}] should install {folder}"
            assert folder in names(extras["all"]), f"misen[all] misses {folder}"


def test_versions_move_in_lockstep() -> None:
    core = _project("misen-core")["version"]
    for folder in [*PLUGINS, "misen-core"]:
        project = _project(folder)
        assert project["version"] == core, f"{folder} is at {project['version']}, misen-core at {core}"
        for dep in project.get("dependencies", []):
            if dep.startswith("misen-core"):
                assert dep == f"misen-core=={core}", f"{folder} depends on {dep}"


def test_every_package_has_a_tox_environment() -> None:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    envs = {s.split(":", 1)[1] for s in tox.sections() if s.startswith("testenv:")}
    for folder in [*PLUGINS, "misen-core"]:  # the meta-package has no code, hence no environment
        env = "core" if folder == "misen-core" else folder.split("-", 1)[1]
        assert env in envs, f"tox.ini has no [testenv:{env}] for {folder}"
        assert f"packages/{folder}/tests" in tox[f"testenv:{env}"].get("commands", "")
