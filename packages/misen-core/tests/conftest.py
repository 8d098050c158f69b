"""Shared fixtures for misen-core's tests: every test runs in its own project directory and misen session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_project(misen_project: Path) -> Path:
    """A fresh project root as cwd, with no user or explicit configuration leaking in (`misen.testing`)."""
    return misen_project


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
