"""The local executor owns what its tasks start: every descendant ends with the task (even one that left the
process group or was orphaned), and an explicit memory request is enforced."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from misen import Task, cache


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


@pytest.mark.parametrize("how", ["session", "double-fork"])
def test_detached_descendants_end_with_the_task(
    how: str, lx: ModuleType, run_local: Callable[..., Any], tmp_path: Path
) -> None:
    task = Task(lx.detach, directory=str(tmp_path), how=how)
    report = run_local(task, num_cpus=1)
    assert report.ok, report.text
    pid = int((tmp_path / f"{how}.pid").read_text())
    try:
        assert _gone(pid), f"the {how} sleeper (pid {pid}) outlived its task"
    finally:
        if alive(pid):
            os.kill(pid, 9)


def test_descendants_end_when_the_task_is_cancelled(
    lx: ModuleType, run_local: Callable[..., Any], tmp_path: Path
) -> None:
    (tmp_path / "hold").touch()
    task = Task(lx.detach, directory=str(tmp_path), how="double-fork", wait=True)
    stopper = threading.Thread(target=lambda: _cancel_when_started(tmp_path))
    stopper.start()
    with pytest.raises(KeyboardInterrupt):
        run_local(task, num_cpus=1, grace_period=0.5)
    stopper.join()
    pid = int((tmp_path / "double-fork.pid").read_text())
    try:
        assert _gone(pid), f"the sleeper (pid {pid}) outlived its cancelled task"
    finally:
        if alive(pid):
            os.kill(pid, 9)


def _cancel_when_started(directory: Path) -> None:
    import signal

    deadline = time.monotonic() + 60
    while not (directory / "double-fork.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: the executor stops its workers


def test_a_task_over_its_memory_request_fails_naming_it(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any
) -> None:
    over = Task(lx.use_memory, mib=768)
    within = Task(lx.use_memory, mib=16)
    report = run_local([over, within], num_cpus=2)
    outcomes = {repr(report.units[u].root): o for u, o in report.outcomes.items()}
    assert outcomes[repr(over)].status == "failed"
    assert f"{over!r} exceeded its memory request of 0.25 GiB" in outcomes[repr(over)].error
    assert outcomes[repr(within)].status == "done" and cache.load(workspace, within) == 16 * 2**20


KILLER = """
import subprocess, sys, time
from misen_executor_local._owned import kill_descendants
print(kill_descendants(), flush=True)  # no child: the one-waitpid answer
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
grandparent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"])
time.sleep(1.0)
print(kill_descendants(), child.poll() is not None, flush=True)
print(kill_descendants(), flush=True)
"""


def test_kill_descendants_answers_at_once_without_children_and_kills_them_all_otherwise() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", KILLER], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["0", "3 True", "0"]
