"""Leftovers of crashed writers: a staging folder whose writer is a dead process on this host goes at the next
process's first store or at ``misen gc``, whatever its age; live writers and other hosts keep the age rule."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner
from misen import cache
from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
from misen_workspace_disk._commands import gc_command
from misen_workspace_disk._fs import HOST

CRASHING_WRITER = """
import os, signal, sys
from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
ws = DiskWorkspace(DiskWorkspaceSettings(directory=sys.argv[1]))
with ws.staging_dir() as staged:
    (staged / "half.bin").write_bytes(b"x" * 100_000)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _crash(workspace: DiskWorkspace) -> Path:
    proc = subprocess.run([sys.executable, "-c", CRASHING_WRITER, workspace.root], capture_output=True)
    assert proc.returncode == -9, proc.stderr
    leftovers = list((Path(workspace.root) / "tmp").iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith("stage-"), leftovers
    return leftovers[0]


def test_the_next_first_store_removes_a_dead_writers_staging_folder_at_once(workspace: DiskWorkspace) -> None:
    leftover = _crash(workspace)
    fresh = DiskWorkspace(DiskWorkspaceSettings(directory=workspace.root))  # the next run's process
    cache.store(fresh, b"value")
    assert not leftover.exists()
    assert list((Path(workspace.root) / "tmp").iterdir()) == []


def test_gc_removes_a_dead_writers_leftover_with_the_default_settings(workspace: DiskWorkspace) -> None:
    leftover = _crash(workspace)
    result = CliRunner().invoke(gc_command, ["--directory", workspace.root])
    assert result.exit_code == 0, result.output
    assert "1 leftovers" in result.output and str(leftover) in result.output
    assert not leftover.exists()


def test_live_and_other_host_writers_keep_the_age_rule(workspace: DiskWorkspace) -> None:
    tmp = Path(workspace.root) / "tmp"
    tmp.mkdir(parents=True)
    live = tmp / f"stage-{os.getppid()}-1.2.3-{HOST}"  # our parent: alive
    other = tmp / "stage-1-1.2.3-some-other-host"
    old_other = tmp / "stage-1-1.2.4-some-other-host"
    for path in (live, other, old_other):
        path.mkdir()
    past = time.time() - 2 * 86400
    os.utime(old_other, (past, past))
    assert [p for p, _ in workspace.sweep_tmp()] == [str(old_other)]  # the default age: one day
    assert [p for p, _ in workspace.sweep_tmp(older_than=0)] == [str(other)]
    assert live.exists()  # a live writer's folder stays, whatever the age limit


def test_a_reused_pid_does_not_keep_a_leftover(workspace: DiskWorkspace) -> None:
    tmp = Path(workspace.root) / "tmp"
    tmp.mkdir(parents=True)
    # made by an earlier process that had our pid: it was last changed long before this process started
    reused = tmp / f"stage-{os.getpid()}-9.9.9-{HOST}"
    reused.mkdir()
    past = time.time() - 3600 * 24 * 365
    os.utime(reused, (past, past))
    assert [p for p, _ in workspace.sweep_tmp()] == [str(reused)]
