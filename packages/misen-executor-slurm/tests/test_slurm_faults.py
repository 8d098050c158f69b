"""On the real test cluster: a full disk and a read-only workspace end each affected unit in one line naming the
workspace and the cause (from the job's outcome, or from the job log when the worker could not write one)."""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from misen.reporting import PlainReporter
from misen.runner import run
from misen.tasks import Task
from misen_executor_slurm.executor import SlurmExecutor
from misen_executor_slurm.testing import SlurmTestCluster

TASKS = """
from misen import meta


@meta(id="SLURM-FAULT-BYTES", cache=True)
def big_bytes(mib: int) -> bytes:
    return b"\\x01" * (mib * 2**20)


@meta(id="SLURM-FAULT-SMALL", cache=True)
def small(tag: str) -> str:
    return tag
"""


def _mount(args: list[str]) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def fault_project(
    slurm_cluster: SlurmTestCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Any]]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs or a read-only bind mount needs root")
    root = tmp_path / "proj"
    module = f"slurmfault_{uuid.uuid4().hex[:8]}"
    (root / "src" / module).mkdir(parents=True)
    (root / "src" / module / "__init__.py").write_text(TASKS)
    (root / "pyproject.toml").write_text(f'[project]\nname = "{module}"\nversion = "0"\n')
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root / "src"))
    yield root, importlib.import_module(module)
    del sys.modules[module]


def _executor(root: Path) -> SlurmExecutor:
    # job scripts, payloads and snapshots on a healthy disk; only the workspace is in trouble
    return SlurmExecutor(
        poll_interval=0.3, max_poll_interval=1.0, default_flags=["--mem=512M"], snapshot_dir=str(root / "jobs")
    )


def _outcomes(report: Any) -> dict[str, Any]:
    return {repr(report.units[u].root): o for u, o in report.outcomes.items()}


def test_a_full_disk_fails_the_unit_in_one_line(fault_project: tuple[Path, Any]) -> None:
    from misen_workspace_disk.workspace import DiskWorkspace

    root, tasks = fault_project
    disk = root / "small"
    disk.mkdir()
    if not _mount(["-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)]):
        pytest.skip("cannot mount a tmpfs here")
    try:
        ws = DiskWorkspace(directory=str(disk / "ws"), fsync=False)
        big, small = Task(tasks.big_bytes, mib=3), Task(tasks.small, tag="fits")
        report = run([big, small], executor=_executor(root), workspace=ws, reporter=PlainReporter(io.StringIO()))
        outcomes = _outcomes(report)
        error = outcomes[repr(big)].error or ""
        assert outcomes[repr(big)].status == "failed"
        assert "no space left on device" in error and str(disk / "ws") in error and "\n" not in error
        first = outcomes[repr(small)]
        if first.status != "done":
            # the two jobs ran side by side and the small one met the full disk too: one line, naming it
            assert first.status == "failed" and "no space left on device" in (first.error or ""), first.error
            assert "\n" not in (first.error or "")
        # the failed store left nothing behind: the task that fits is stored (or already was) and reads back
        again = _outcomes(run([small], executor=_executor(root), workspace=ws, reporter=PlainReporter(io.StringIO())))
        assert all(o.status == "done" for o in again.values()), again
        assert small.result(workspace=ws, compute=False) == "fits"
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_read_only_workspace_fails_the_unit_in_one_line(fault_project: tuple[Path, Any]) -> None:
    from misen_workspace_disk.workspace import DiskWorkspace

    root, tasks = fault_project
    src = root / "rows"
    ws = DiskWorkspace(directory=str(src), fsync=False)
    ws.put_record("task", "00" * 16, {"result": "none"})  # the workspace exists, then becomes read-only
    if not (_mount(["--bind", str(src), str(src)]) and _mount(["-o", "remount,bind,ro", str(src)])):
        subprocess.run(["umount", str(src)], check=False)
        pytest.skip("cannot make a read-only bind mount here")
    try:
        task = Task(tasks.small, tag="read-only")
        report = run([task], executor=_executor(root), workspace=ws, reporter=PlainReporter(io.StringIO()))
        outcome = _outcomes(report)[repr(task)]
        error = outcome.error or ""
        assert outcome.status == "failed"
        assert "read-only" in error and str(src) in error and "\n" not in error, error
        assert "Traceback" not in error
    finally:
        subprocess.run(["umount", str(src)], check=False)
