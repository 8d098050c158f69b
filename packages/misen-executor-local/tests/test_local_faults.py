"""A full disk or a read-only workspace ends each affected unit in one line naming the workspace; the run ends
cleanly (no worker traceback, no "worker process exited")."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from misen import Task


def _mount(args: list[str]) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (root only)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or not _mount(["-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)]):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _run(tasks: Any, ws: Any, executor: str) -> tuple[Any, str]:
    import io

    from misen import InProcessExecutor
    from misen.reporting import PlainReporter
    from misen.runner import run
    from misen_executor_local import LocalExecutor

    ex = LocalExecutor(num_cpus=2, grace_period=2.0) if executor == "local" else InProcessExecutor()
    stream = io.StringIO()
    report = run(tasks, executor=ex, workspace=ws, reporter=PlainReporter(stream))
    return report, stream.getvalue()


@pytest.mark.parametrize("executor", ["local", "in-process"])
def test_a_full_disk_fails_the_unit_in_one_line(
    executor: str, small_disk: Path, lx: ModuleType, capfd: pytest.CaptureFixture[str]
) -> None:
    from misen_workspace_disk import DiskWorkspace

    ws = DiskWorkspace(directory=str(small_disk / "ws"), fsync=False)
    big = Task(lx.big_bytes, mib=3, tag=executor)
    after = Task(lx.after, dep=big.T, tag=executor)
    small = Task(lx.probe, name=f"small-{executor}")
    report, text = _run([after, small], ws, executor)
    outcomes = {repr(report.units[u].root): o for u, o in report.outcomes.items()}
    failed = outcomes[repr(big)]
    assert failed.status == "failed"
    assert "no space left on device" in failed.error and str(small_disk / "ws") in failed.error
    assert "\n" not in failed.error
    assert outcomes[repr(after)].status == "skipped"
    assert outcomes[repr(small)].status == "done"
    err = capfd.readouterr().err
    assert "Traceback" not in err and "worker process exited" not in text + err
    assert not any((small_disk / "ws" / "tmp").iterdir())


@pytest.fixture
def read_only_ws(tmp_path: Path, lx: ModuleType) -> Iterator[Any]:
    from misen_workspace_disk import DiskWorkspace

    src = tmp_path / "rows"
    ws = DiskWorkspace(directory=str(src), fsync=False)
    _run([Task(lx.probe, name="before")], ws, "local")  # the code snapshot is taken now, reused later
    if os.geteuid() != 0 or not (
        _mount(["--bind", str(src), str(src)]) and _mount(["-o", "remount,bind,ro", str(src)])
    ):
        subprocess.run(["umount", str(src)], check=False)
        pytest.skip("cannot make a read-only bind mount here (needs root)")
    try:
        yield ws
    finally:
        subprocess.run(["umount", str(src)], check=False)


@pytest.mark.parametrize("executor", ["local", "in-process"])
def test_a_read_only_workspace_fails_in_one_line(
    executor: str, read_only_ws: Any, lx: ModuleType, capfd: pytest.CaptureFixture[str]
) -> None:
    cached = Task(lx.probe, name="before")
    new = Task(lx.probe, name=f"new-{executor}")
    report, text = _run([cached, new], read_only_ws, executor)
    outcomes = {repr(report.units[u].root): o for u, o in report.outcomes.items()}
    assert outcomes.get(repr(cached)) is None or outcomes[repr(cached)].ok
    failed = outcomes[repr(new)]
    assert failed.status == "failed", failed
    assert "read-only" in failed.error and read_only_ws.root in failed.error and "\n" not in failed.error
    err = capfd.readouterr().err
    assert "Traceback" not in err and "worker process exited" not in text + err
