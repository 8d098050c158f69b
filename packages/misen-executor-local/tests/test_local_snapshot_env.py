"""The snapshot and the environment files, through real worker processes: queued work runs the code it was
submitted with even if the module is edited meanwhile; ``.env`` then ``.env.local`` reach every task."""

from __future__ import annotations

import importlib
import stat
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from misen import Task, cache

FIRST = """
import time
from pathlib import Path
from misen import meta


@meta(id="SNAP-FIRST", cache=True)
def slow_first(directory: str) -> int:
    Path(directory, "started").touch()
    deadline = time.time() + 60
    while not Path(directory, "edited").exists() and time.time() < deadline:
        time.sleep(0.02)
    return 1
"""

SECOND = """
from misen import meta


@meta(id="SNAP-SECOND", cache=True)
def value(x: int) -> str:
    return "{version}"
"""


@pytest.fixture
def snap_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    package = f"snapproj_{uuid.uuid4().hex[:8]}"
    root = tmp_path / "snapproj"
    (root / "src" / package).mkdir(parents=True)
    (root / "pyproject.toml").write_text(f'[project]\nname = "{package}"\nversion = "0"\n')
    (root / "src" / package / "__init__.py").write_text("")
    (root / "src" / package / "first.py").write_text(FIRST)
    (root / "src" / package / "second.py").write_text(SECOND.format(version="old"))
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root / "src"))
    return root, package


def test_editing_code_while_a_run_is_queued_does_not_change_what_runs(
    snap_project: tuple[Path, str], run_local: Callable[..., Any], workspace: Any, tmp_path: Path
) -> None:
    root, package = snap_project
    first = importlib.import_module(f"{package}.first")
    second = importlib.import_module(f"{package}.second")
    signals = tmp_path / "signals"
    signals.mkdir()
    head = Task(first.slow_first, directory=str(signals))
    tail = Task(second.value, x=head.T)

    def edit_while_first_runs() -> None:
        deadline = time.time() + 60
        while not (signals / "started").exists() and time.time() < deadline:
            time.sleep(0.02)
        (root / "src" / package / "second.py").write_text(SECOND.format(version="new"))
        (signals / "edited").touch()

    editor = threading.Thread(target=edit_while_first_runs)
    editor.start()
    try:
        report = run_local(tail, num_cpus=2)
    finally:
        editor.join()
    assert report.ok, report.text
    assert (root / "src" / package / "second.py").read_text().count('"new"') == 1
    assert cache.load(workspace, tail) == "old"
    snapshots = workspace.local_root() / "snapshots"
    assert len([p for p in snapshots.iterdir() if not p.name.startswith(".")]) == 1
    # A new run takes a new snapshot with the edited code; an unchanged tree reuses it.
    fresh = Task(second.value, x=2)
    assert run_local(fresh, num_cpus=1).ok
    assert cache.load(workspace, fresh) == "new"
    again = Task(second.value, x=3)
    assert run_local(again, num_cpus=1).ok
    assert len([p for p in snapshots.iterdir() if not p.name.startswith(".")]) == 2
    del sys.modules[f"{package}.first"], sys.modules[f"{package}.second"], sys.modules[package]


def test_env_files_reach_tasks_and_local_wins(
    lx: ModuleType,
    run_local: Callable[..., Any],
    workspace: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "envproj"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "envproj"\nversion = "0"\n')
    (root / ".env").write_text("LX_SHARED=from-env\nLX_BOTH=from-env\n")
    local = root / ".env.local"
    local.write_text("# secrets\nLX_BOTH=from-local\nLX_SECRET='s3cr3t'\n")
    local.chmod(0o644)
    monkeypatch.chdir(root)
    monkeypatch.setenv("LX_SHARED", "from-shell")
    names = ["LX_SHARED", "LX_BOTH", "LX_SECRET", "LX_MISSING"]
    tasks = [Task(lx.read_env, names=names, tag=str(i)) for i in range(2)]
    report = run_local(tasks, num_cpus=2)
    assert report.ok, report.text
    expected = {"LX_SHARED": "from-env", "LX_BOTH": "from-local", "LX_SECRET": "s3cr3t", "LX_MISSING": None}
    for task in tasks:
        assert cache.load(workspace, task) == expected
    assert stat.S_IMODE(local.stat().st_mode) == 0o600
    snap_local = next((workspace.local_root() / "snapshots").glob("*/.env.local"))
    assert stat.S_IMODE(snap_local.stat().st_mode) == 0o600
