"""Ctrl-C for real: a run in a subprocess gets SIGINT while tasks are running; every worker and the processes
its task started are gone, locks are released, running tasks are recorded as cancelled, and the next run
finishes the work without redoing what was done."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from misen import Task, cache

SCRIPT = """
import json, sys
sys.path.insert(0, "src")
from misen import Task
from misen.runner import run
from misen_executor_local import LocalExecutor
from misen_workspace_disk.workspace import DiskWorkspace
import lxtasks as lx

d, ws_dir = sys.argv[1], sys.argv[2]
ws = DiskWorkspace(directory=ws_dir, fsync=False)
quick = Task(lx.probe, name="quick")
blocked = Task(lx.block, directory=d, name="b", child=True)
dependent = Task(lx.after, dep=blocked.T, tag="c")
other = Task(lx.block, directory=d, name="o")
try:
    report = run([quick, dependent, other], executor=LocalExecutor(num_cpus=2, grace_period=5), workspace=ws)
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
    sys.exit(130)
print(json.dumps(report.counts()), flush=True)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_ctrl_c_stops_the_run_cleanly_and_the_next_run_finishes(
    lx: ModuleType, workspace: Any, in_project: Path, tmp_path: Path
) -> None:
    d = tmp_path / "signals"
    d.mkdir()
    (d / "hold").touch()
    script = tmp_path / "run_it.py"
    script.write_text(SCRIPT)
    cmd = [sys.executable, str(script), str(d), workspace.root]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd, cwd=in_project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for(d / "b.running", proc)
    wait_for(d / "o.running", proc)
    b, o = json.loads((d / "b.running").read_text()), json.loads((d / "o.running").read_text())
    assert all(alive(p) for p in (b["pid"], b["child"], o["pid"]))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "INTERRUPTED" in out
    assert "cancelled" in err, err
    # Workers and the process a task started are gone; nothing holds a lock.
    for pid in (b["pid"], b["child"], o["pid"]):
        assert not alive(pid), pid
    blocked = Task(lx.block, directory=str(d), name="b", child=True)
    other = Task(lx.block, directory=str(d), name="o")
    dependent = Task(lx.after, dep=blocked.T, tag="c")
    quick = Task(lx.probe, name="quick")
    for task in (blocked, other):
        assert workspace.lock_holder(task.hash) is None
        assert cache.failure(workspace, task)["status"] == "cancelled"
        assert not cache.is_cached(workspace, task)
    assert cache.is_cached(workspace, quick) and not cache.is_cached(workspace, dependent)
    assert not list(d.glob("*.ran.*"))
    # The next run picks up where this one stopped.
    (d / "hold").unlink()
    done = subprocess.run(cmd, cwd=in_project, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"done": 3}
    assert cache.load(workspace, dependent) == "after c"
    assert cache.failure(workspace, blocked) is None
    assert len(list(d.glob("b.ran.*"))) == 1 and len(list(d.glob("o.ran.*"))) == 1
    # The process the task started and left running ended with the run.
    child = json.loads((d / "b.running").read_text())["child"]
    assert child != b["child"]
    deadline = time.time() + 10
    while alive(child) and time.time() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def test_a_cancel_request_stops_running_units_and_returns(
    lx: ModuleType, workspace: Any, tmp_path: Path
) -> None:
    from misen.executor import RunEvents
    from misen.runner import build_plan
    from misen_executor_local import LocalExecutor

    d = tmp_path / "signals"
    d.mkdir()
    (d / "hold").touch()
    blocked = Task(lx.block, directory=str(d), name="c")
    later = Task(lx.after, dep=blocked.T, tag="later")
    plan, _, _ = build_plan([later], workspace, run_id="cancel-test", executor="local")
    events = RunEvents()
    pids: list[int] = []

    def started(unit: Any, where: str) -> None:
        # Ask to cancel once the blocking task is really running.
        while not (d / "c.running").exists():
            time.sleep(0.02)
        pids.append(json.loads((d / "c.running").read_text())["pid"])
        events.cancel()

    events._on_start = started
    outcomes = LocalExecutor(num_cpus=1, grace_period=2).execute(plan, workspace, events)
    assert {repr(plan.units[u].root): o.status for u, o in outcomes.items()} == {
        repr(blocked): "cancelled",
        repr(later): "cancelled",
    }
    assert not alive(pids[0])
    assert cache.failure(workspace, blocked)["status"] == "cancelled"
    assert workspace.lock_holder(blocked.hash) is None
