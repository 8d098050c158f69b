"""Failures with real processes: a task that raises, calls os._exit, is SIGKILLed, passes its time limit or
ignores SIGTERM; what is recorded, what is skipped, and that the rest of the run goes on. Also the task logs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from misen import Task, cache
from misen.tasklog import task_logs


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def by_name(report: Any) -> dict[str, Any]:
    return {repr(report.units[u].root): o for u, o in report.outcomes.items()}


def test_a_raising_task_fails_with_its_log_and_skips_dependents(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any
) -> None:
    bad = Task(lx.raises, message="no luck")
    dependent = Task(lx.after, dep=bad.T, tag="d1")
    grandchild = Task(lx.after, dep=dependent.T, tag="d2")
    independent = Task(lx.probe, name="independent")
    report = run_local([grandchild, independent], num_cpus=2)
    outcomes = by_name(report)
    assert outcomes[repr(bad)].status == "failed"
    assert "RuntimeError: no luck" in outcomes[repr(bad)].error
    assert outcomes[repr(dependent)].status == "skipped" and outcomes[repr(grandchild)].status == "skipped"
    assert outcomes[repr(independent)].status == "done"
    log = Path(outcomes[repr(bad)].log).read_text()
    assert "about to fail: no luck" in log and "Traceback" in log
    failure = cache.failure(workspace, bad)
    assert failure["status"] == "failed" and failure["log"] == outcomes[repr(bad)].log
    assert not cache.is_cached(workspace, dependent)
    assert "✗" in report.text and "no luck" in report.text


def test_os_exit_and_sigkill_are_failures(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any
) -> None:
    exits = Task(lx.hard_exit, code=3)
    killed = Task(lx.kill_self, tag="k")
    after_kill = Task(lx.after, dep=killed.T, tag="ak")
    fine = [Task(lx.probe, name=f"fine{i}") for i in range(3)]
    report = run_local([exits, after_kill, *fine], num_cpus=2)
    outcomes = by_name(report)
    e, k = outcomes[repr(exits)], outcomes[repr(killed)]
    assert e.status == "failed" and "exited with code 3" in e.error, e
    assert k.status == "failed" and "SIGKILL" in k.error, k
    assert outcomes[repr(after_kill)].status == "skipped"
    assert all(outcomes[repr(t)].status == "done" for t in fine)
    assert "exiting hard" in Path(e.log).read_text()
    assert "killing myself" in Path(k.log).read_text()
    assert cache.failure(workspace, exits)["status"] == "failed"
    assert "SIGKILL" in cache.failure(workspace, killed)["error"]
    # Nothing holds the dead tasks' locks.
    assert workspace.lock_holder(exits.hash) is None and workspace.lock_holder(killed.hash) is None


@pytest.mark.timeout(60)  # without the fix, the run waits for the child's 120 s
def test_a_dead_worker_is_noticed_even_if_a_forked_child_holds_its_pipe(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "fork.json"
    task = Task(lx.fork_and_exit, marker=str(marker))
    report = run_local(task, num_cpus=1)
    o = by_name(report)[repr(task)]
    assert o.status == "failed" and "exited with code 5" in o.error, o
    child = json.loads(marker.read_text())["child"]
    deadline = time.time() + 10
    while alive(child) and time.time() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def test_time_limit_stops_the_task_and_replaces_its_worker(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "hang.json"
    slow = Task(lx.hang, minutes=0.02, marker=str(marker))
    dependent = Task(lx.after, dep=slow.T, tag="t")
    later = [Task(lx.probe, name=f"later{i}") for i in range(3)]
    report = run_local([dependent, *later], num_cpus=1)
    outcomes = by_name(report)
    o = outcomes[repr(slow)]
    assert o.status == "timeout", o
    assert "time limit of 0.02 min" in o.error and "SIGKILL" not in o.error
    assert outcomes[repr(dependent)].status == "skipped"
    assert all(outcomes[repr(t)].status == "done" for t in later)
    failure = cache.failure(workspace, slow)
    assert failure["status"] == "timeout" and failure["log"] and "hanging" in Path(failure["log"]).read_text()
    hung_pid = json.loads(marker.read_text())["pid"]
    assert all(cache.load(workspace, t)["pid"] != hung_pid for t in later)
    assert workspace.lock_holder(slow.hash) is None


def test_a_task_ignoring_sigterm_is_killed_after_the_grace_period(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any, tmp_path: Path
) -> None:
    slow = Task(lx.hang, minutes=0.05, marker=str(tmp_path / "m.json"), ignore_term=True)
    report = run_local(slow, num_cpus=1, grace_period=0.5)
    o = by_name(report)[repr(slow)]
    assert o.status == "timeout" and "SIGKILL after 0.5s" in o.error, o
    assert cache.failure(workspace, slow)["status"] == "timeout"


def test_output_of_the_task_and_its_subprocesses_goes_to_its_log(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any
) -> None:
    task = Task(lx.chatty, tag="T7")
    report = run_local(task, num_cpus=1)
    assert report.ok, report.text
    # A quick task that succeeded: its worker's spool held the output, and the text went into the task's record
    # (no log file); what its subprocesses printed through descriptors 1 and 2 is there too.
    assert workspace.list_logs("task", task.hash) == []
    logs = task_logs(workspace, task)
    assert len(logs) == 1 and logs[0].path is None
    text = logs[0].read()
    for line in ("stdout line T7", "stderr line T7", "child process line T7", "shell line T7"):
        assert line in text, text
    unit_logs = workspace.list_logs("unit", task.hash)
    assert len(unit_logs) == 1 and "ended done" in unit_logs[0].read()


def test_unit_logs_say_where_and_how_units_ended(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any
) -> None:
    bad = Task(lx.raises, message="unit log")
    slow = Task(lx.probe, name="slow", seconds=1.1)
    report = run_local([bad, slow], num_cpus=2)
    outcomes = by_name(report)
    for task, status in ((bad, "failed"), (slow, "done")):
        logs = workspace.list_logs("unit", task.hash)
        assert len(logs) == 1, task
        text = logs[0].read()
        assert f"ended {status}" in text and "(pid " in text and outcomes[repr(task)].where in text, text
        assert f"task log: {outcomes[repr(task)].log}" in text
    assert "RuntimeError: unit log" in workspace.list_logs("unit", bad.hash)[0].read()


def test_units_queued_behind_a_dying_task_still_run(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any
) -> None:
    # Cheap tasks of one shape are queued on a worker behind the running one; the worker dies mid-way (SIGKILL
    # and os._exit of the same shape); whatever was queued behind them runs on a fresh worker.
    tasks = [Task(lx.probe, name=f"q{i}") for i in range(12)]
    killed = Task(lx.kill_self, tag="mid")
    exits = Task(lx.hard_exit, code=4)
    mixed = [*tasks[:4], killed, *tasks[4:8], exits, *tasks[8:]]
    report = run_local(mixed, num_cpus=1)
    outcomes = by_name(report)
    assert outcomes[repr(killed)].status == "failed" and outcomes[repr(exits)].status == "failed"
    assert all(outcomes[repr(t)].status == "done" for t in tasks), report.text
    pids = [cache.load(workspace, t)["pid"] for t in tasks]
    assert len(set(pids)) >= 2  # the worker was replaced after each death
