"""Shared fixtures for misen-core's tests: every test runs in its own project directory and configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh project root as cwd, with no user or explicit configuration leaking in."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "scratch"\nversion = "0"\n')
    monkeypatch.chdir(project)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("MISEN_CONFIG", raising=False)
    from misen import settings, tasks

    settings.set_config_override(None)
    settings._cache.clear()
    tasks._config_cache.clear()
    yield project
    settings.set_config_override(None)
    tasks._config_cache.clear()


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
