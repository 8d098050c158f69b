"""Fixtures of the disk workspace tests: a fresh workspace per test, and a runner for Python in a subprocess."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from misen.errors import TaskLockedError
from misen.workspace import LockHolder
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


_FORK = multiprocessing.get_context("fork")


def _racer(root: str, key: str | None, trials: int, barrier, results, name: str) -> None:  # type: ignore[no-untyped-def]
    ws = DiskWorkspace(DiskWorkspaceSettings(directory=root))
    for i in range(trials):
        barrier.wait()
        try:
            with ws.lock(key or f"{i:032x}", LockHolder.current(task=f"t{i}")):
                results.put((i, name, "won", os.getpid()))
                barrier.wait()  # hold until the other one has tried
        except TaskLockedError as exc:
            results.put((i, name, str(exc), exc.holder.pid if exc.holder else None))
            barrier.wait()


def race_pair(target: Any, args: tuple[Any, ...], *, replies: int, timeout: float) -> list[Any]:
    """Two forked processes run ``target(*args, barrier, results, name)`` (named ``"a"`` and ``"b"``, meeting at
    ``barrier`` as they please); returns the ``replies`` items they put on ``results``, once both ended cleanly."""
    barrier, results = _FORK.Barrier(2, timeout=timeout), _FORK.Queue()
    procs = [_FORK.Process(target=target, args=(*args, barrier, results, name)) for name in "ab"]
    for p in procs:
        p.start()
    rows = [results.get(timeout=timeout) for _ in range(replies)]
    for p in procs:
        p.join(timeout / 2)
        assert p.exitcode == 0
    return rows


def race_for_lock(root: str, key: str | None, trials: int) -> dict[int, list[tuple[str, str, int | None]]]:
    """Two forked processes try one lock at the same moment, ``trials`` times (``key``, or a new key per trial):
    each time exactly one wins and the other's `TaskLockedError` names the winner's pid. Returns
    ``{trial: [(process, "won" or the error, pid)]}`` for further checks."""
    rows = race_pair(_racer, (root, key, trials), replies=2 * trials, timeout=60)
    by_trial: dict[int, list[tuple[str, str, int | None]]] = {}
    for i, name, what, pid in rows:
        by_trial.setdefault(i, []).append((name, what, pid))
    assert len(by_trial) == trials
    for pair in by_trial.values():
        winners = [r for r in pair if r[1] == "won"]
        losers = [r for r in pair if r[1] != "won"]
        assert len(winners) == 1 and len(losers) == 1, pair
        assert losers[0][2] == winners[0][2] and f"pid {winners[0][2]}" in losers[0][1], pair
    return by_trial


@pytest.fixture
def lock_race():
    """`race_for_lock`."""
    return race_for_lock


@pytest.fixture
def racing_pair():
    """`race_pair`."""
    return race_pair
