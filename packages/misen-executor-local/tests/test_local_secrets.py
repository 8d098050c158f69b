"""Secrets from ``.env``/``.env.local`` never land in a file another user can read, on any executor."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from misen import Task, cache
from misen.reporting import PlainReporter

SHARED_SECRET = "dotenv-7f3a9c1e5b"
LOCAL_SECRET = "dotenvlocal-c0ffee2d8e"


def exposed_files(roots: list[Path], secrets: list[str]) -> list[str]:
    """Files under ``roots`` holding a secret that a user other than the owner could read (with why)."""
    found: list[str] = []
    needles = [s.encode() for s in secrets]
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for name in files:
                path = Path(dirpath, name)
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                if not any(n in data for n in needles):
                    continue
                mode = stat.S_IMODE(path.stat().st_mode)
                parent = stat.S_IMODE(path.parent.stat().st_mode)
                if mode & 0o077 or parent & 0o077:
                    found.append(f"{path} (file {mode:o}, folder {parent:o})")
    return found


def holding(roots: list[Path], secret: str) -> list[Path]:
    return [
        Path(d, n) for root in roots for d, _, files in os.walk(root) for n in files
        if secret.encode() in Path(d, n).read_bytes()
    ]  # fmt: skip


@pytest.fixture
def secret_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "secretproj"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "secretproj"\nversion = "0"\n')
    (root / ".env").write_text(f"LX_SHARED_SECRET={SHARED_SECRET}\n")
    (root / ".env.local").write_text(f"LX_LOCAL_SECRET={LOCAL_SECRET}\n")
    monkeypatch.chdir(root)
    return root


@pytest.mark.parametrize("executor", ["local", "in-process"])
def test_no_file_another_user_can_read_holds_a_secret(
    executor: str,
    secret_project: Path,
    lx: ModuleType,
    run_local: Callable[..., Any],
    workspace: Any,
) -> None:
    tasks = [Task(lx.env_length, name=n, tag=executor) for n in ("LX_SHARED_SECRET", "LX_LOCAL_SECRET")]
    if executor == "local":
        report = run_local(tasks, num_cpus=2)
    else:
        from misen import InProcessExecutor
        from misen.runner import run

        report = run(tasks, executor=InProcessExecutor(), workspace=workspace, reporter=PlainReporter(io.StringIO()))
    assert report.ok
    assert [cache.load(workspace, t) for t in tasks] == [len(SHARED_SECRET), len(LOCAL_SECRET)]
    roots = [Path(workspace.local_root())]
    assert exposed_files(roots, [SHARED_SECRET, LOCAL_SECRET]) == []
    if executor == "local":  # the snapshot holds the env files, private
        assert holding(roots, LOCAL_SECRET), "the scan found no copy of the env files: is it looking?"
