"""Task logs of the local executor's workers: each worker's output goes to its spool file; a quick task that
succeeds keeps its log in its record (no file), a log that matters (a long run, a failure, a crash) becomes a
file of its own, and no spool outlives the run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from misen import Task, cache
from misen.tasklog import task_logs


def _spools(workspace: Any) -> list[Path]:
    return sorted((Path(workspace.root) / "tmp").glob("spool-*"))


def test_a_sweep_of_quick_tasks_writes_no_task_log_file(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any
) -> None:
    tasks = [Task(lx.chatty, tag=f"S{i}") for i in range(30)]
    report = run_local(tasks, num_cpus=2)
    assert report.ok, report.text
    assert not (Path(workspace.root) / "logs" / "task").exists()
    for task in tasks:
        (log,) = task_logs(workspace, task)
        tag = task.arguments["tag"]
        # its own output, its subprocesses' output, and nothing of the tasks before it on the same worker
        assert log.path is None and f"stdout line {tag}\n" in log.read() and f"shell line {tag}\n" in log.read()
        assert log.read().count("stdout line ") == 1
    assert _spools(workspace) == []


def test_a_long_task_gets_its_log_file_and_the_next_task_a_fresh_spool(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any
) -> None:
    slow = Task(lx.talk_slowly, tag="L1", seconds=1.6)
    quick = Task(lx.chatty, tag="Q1")
    report = run_local([slow, quick], num_cpus=1)  # one worker: the quick task runs after the slow one
    assert report.ok, report.text
    (log,) = task_logs(workspace, slow)
    assert log.path is not None and log.path.is_file()
    text = log.read()
    for line in ("before L1", "after L1", "shell after L1", "[misen] done in"):
        assert line in text, text
    assert "Q1" not in text
    (other,) = task_logs(workspace, quick)
    assert other.path is None and "stdout line Q1" in other.read() and "L1" not in other.read()
    assert cache.provenance(workspace, slow)["log"] == str(log.path)
    assert _spools(workspace) == []


def test_a_worker_killed_mid_task_leaves_what_the_task_printed_in_its_log(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any
) -> None:
    killed = Task(lx.kill_self, tag="spool")
    report = run_local([killed, Task(lx.chatty, tag="K2")], num_cpus=1)
    assert not report.ok
    # The task printed, then its worker died within a second: the text was only in the worker's spool.
    failure = cache.failure(workspace, killed)
    assert failure is not None and failure["status"] == "failed" and failure["log"], failure
    assert "killing myself" in Path(failure["log"]).read_text()
    (after,) = task_logs(workspace, Task(lx.chatty, tag="K2"))
    assert "stdout line K2" in after.read() and "killing myself" not in after.read()
    assert _spools(workspace) == []


def test_a_new_executor_removes_the_spools_of_executors_of_this_host_that_are_gone(workspace: Any) -> None:
    import os
    import subprocess
    import sys

    from misen.workspace import hostname
    from misen_executor_local._ending import new_spool

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    tmp = Path(workspace.root) / "tmp"
    tmp.mkdir(parents=True)
    dead = tmp / f"spool-{gone.pid}-0a1b2c3d-{hostname()}"
    live = tmp / f"spool-{os.getppid()}-0a1b2c3d-{hostname()}"  # another executor still running
    elsewhere = tmp / f"spool-{gone.pid}-0a1b2c3d-{hostname()}x"  # a process of another host: unknown here
    other = tmp / "stage-1-x"
    for path in (dead, live, elsewhere, other):
        path.write_text("printed\n")
    mine = new_spool(workspace)
    assert mine is not None and Path(mine).parent == tmp and Path(mine).name.startswith(f"spool-{os.getpid()}-")
    assert not dead.exists()
    assert live.exists() and elsewhere.exists() and other.exists()
