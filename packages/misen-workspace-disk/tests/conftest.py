"""Fixtures of the disk workspace tests: a fresh workspace per test, and a runner for Python in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings


@pytest.fixture
def workspace(tmp_path: Path) -> DiskWorkspace:
    return DiskWorkspace(DiskWorkspaceSettings(directory=str(tmp_path / "ws")))


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and mtime, to prove that nothing was written."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[p] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def snapshot_tree():
    return tree


def run_python(
    code: str, *args: str, cwd: Path | None = None, timeout: float = 120, **kw
) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter of this venv."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


@pytest.fixture
def python():
    return run_python


@pytest.fixture(autouse=True)
def _fresh_misen_session(misen_session: object) -> object:
    """Each test gets its own misen session (`misen.testing`), so nothing carries over between tests."""
    return misen_session
