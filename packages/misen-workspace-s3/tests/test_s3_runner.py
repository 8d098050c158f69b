"""Experiments run through misen's runner on the S3 workspace: in process and with the local executor, two runs
racing on one task, logs and WORK_DIR checkpoints that follow a task to another machine."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from misen import cache
from misen.runner import run
from misen.tasklog import task_logs
from misen.tasks import Task
from misen.testing import ExecutorContract
from misen.testing import tasks as T
from misen.workspace import Workspace
from misen_workspace_s3 import S3Workspace

TASKS = """
import os, time
from pathlib import Path
from misen.taskmeta import meta
from misen.tasks import WORK_DIR


@meta(id="S3TEST-SLOW-MARK", cache=True)
def slow_mark(directory: str, seconds: float) -> int:
    Path(directory, f"ran.{os.getpid()}").write_text("x")
    time.sleep(seconds)
    return 7


@meta(id="S3TEST-CHATTY", cache=True)
def chatty(n: int) -> int:
    for i in range(n):
        print(f"line {i}", flush=True)
    return n


@meta(id="S3TEST-RESUME", cache=True)
def resumable(steps: int, work_dir: Path = WORK_DIR) -> str:
    ckpt = Path(work_dir) / "ckpt.txt"
    if not ckpt.exists():
        ckpt.write_text("step 1")
        raise RuntimeError("preempted after step 1")
    return f"resumed from {ckpt.read_text()} to step {steps}"
"""


class Quiet:
    def stale(self, *a: Any) -> None: ...
    def start(self, *a: Any) -> None: ...
    def unit_started(self, *a: Any) -> None: ...
    def unit_finished(self, *a: Any) -> None: ...
    def finish(self, *a: Any) -> None: ...


@pytest.fixture
def task_module(tmp_path: Path) -> Iterator[Any]:
    """The test's task functions, importable by name here and in child processes (through ``sys.path``)."""
    pkg = tmp_path / "tasks_pkg"
    pkg.mkdir()
    (pkg / "s3_race_tasks.py").write_text(textwrap.dedent(TASKS))
    sys.path.insert(0, str(pkg))
    import importlib

    module = importlib.import_module("s3_race_tasks")
    yield module
    sys.path.remove(str(pkg))
    sys.modules.pop("s3_race_tasks", None)


def test_experiment_round_trip_in_process(make_ws: Callable[..., S3Workspace]) -> None:
    ws = make_ws()
    a = Task(T.add, a=1, b=2)
    b = Task(T.add, a=a.T, b=Task(T.nocache_double, x=a.T).T)
    report = run(b, executor="in-process", workspace=ws, reporter=Quiet())
    assert report.ok, report.outcomes
    other = make_ws()  # another machine
    assert cache.is_cached(other, a) and cache.is_cached(other, b)
    assert b.result(workspace=other) == 9
    assert cache.provenance(other, b) is not None
    again = run(b, executor="in-process", workspace=other, reporter=Quiet())
    assert again.ok and not again.outcomes


@pytest.mark.parametrize("backend", ["s3", "file"], indirect=True)
class TestS3WorkspaceWithLocalExecutor(ExecutorContract):
    """The local executor's worker processes open the workspace from its spec: a real cross-process setup."""

    @pytest.fixture
    def executor(self) -> Any:
        local = pytest.importorskip("misen_executor_local", reason="the local executor is not installed")
        return local.LocalExecutor(num_cpus=2, grace_period=2.0)

    @pytest.fixture
    def workspace(self, make_ws: Callable[..., S3Workspace]) -> Workspace:
        return make_ws()


RUNNER = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from s3_race_tasks import slow_mark
from misen.runner import run
from misen.tasklog import task_logs
from misen.tasks import Task
from misen.workspace import Workspace

ws = Workspace.from_spec(json.loads(sys.argv[1]))
d = Path(sys.argv[3])
(d / f"ready.{sys.argv[4]}").touch()
while not (d / "go").exists():
    time.sleep(0.002)
report = run(Task(slow_mark, directory=str(d), seconds=1.5), executor="in-process", workspace=ws)
print(json.dumps([[o.status, o.error] for o in report.outcomes.values()]))
ws.close()
"""


@pytest.mark.parametrize("backend", ["s3", "file"], indirect=True)
def test_two_runs_racing_on_one_task_execute_it_once(
    make_ws: Callable[..., S3Workspace], popen_child: Callable[..., Any], task_module: Any, tmp_path: Path
) -> None:
    ws = make_ws()
    d = tmp_path / "race"
    d.mkdir()
    spec = json.dumps(ws.spec())
    procs = [popen_child(RUNNER, spec, str(tmp_path / "tasks_pkg"), str(d), str(i)) for i in range(2)]
    deadline = time.monotonic() + 60
    while len(list(d.glob("ready.*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    (d / "go").touch()
    outcomes = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    assert len(list(d.glob("ran.*"))) == 1, outcomes
    statuses = sorted(o[0][0] for o in outcomes)
    assert statuses in (["done", "failed"], ["cached", "done"]), outcomes
    if statuses == ["done", "failed"]:
        error = next(o[0][1] for o in outcomes if o[0][0] == "failed")
        assert "already running" in error and "pid" in error
    task = Task(task_module.slow_mark, directory=str(d), seconds=1.5)
    assert task.result(workspace=make_ws()) == 7
    assert len(list(d.glob("ran.*"))) == 1


def test_task_log_reaches_the_store(make_ws: Callable[..., S3Workspace], task_module: Any) -> None:
    ws = make_ws()
    task = Task(task_module.chatty, n=3)
    assert run(task, executor="in-process", workspace=ws, reporter=Quiet()).ok
    logs = task_logs(make_ws(), task)  # a quick task's log is in its record, which the store holds
    assert logs and "line 0\nline 1\nline 2" in logs[0].read()


@pytest.mark.parametrize("backend", ["s3", "file"], indirect=True)
def test_a_preempted_task_resumes_from_its_work_dir_elsewhere(
    make_ws: Callable[..., S3Workspace], task_module: Any
) -> None:
    task = Task(task_module.resumable, steps=5)
    first = run(task, executor="in-process", workspace=make_ws(cache="machine-1"), reporter=Quiet())
    assert not first.ok
    second_ws = make_ws(cache="machine-2")
    assert cache.status(second_ws, task) == "failed"
    assert run(task, executor="in-process", workspace=second_ws, reporter=Quiet()).ok
    assert task.result(workspace=make_ws(cache="machine-3")) == "resumed from step 1 to step 5"
