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

from misen import Task

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
        assert workspace.failure(task)["status"] == "cancelled"
        assert not workspace.is_cached(task)
    assert workspace.is_cached(quick) and not workspace.is_cached(dependent)
    assert not list(d.glob("*.ran.*"))
    # The next run picks up where this one stopped.
    (d / "hold").unlink()
    done = subprocess.run(cmd, cwd=in_project, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"done": 3}
    assert workspace.load(dependent) == "after c"
    assert workspace.failure(blocked) is None
    assert len(list(d.glob("b.ran.*"))) == 1 and len(list(d.glob("o.ran.*"))) == 1
