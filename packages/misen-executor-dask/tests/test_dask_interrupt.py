"""Ctrl-C for real: a run in a subprocess gets SIGINT while units run. The units' processes and what they started
are gone, the units are recorded cancelled with their locks released; a cluster misen started is closed, one it
connected to keeps running; the next run finishes the work."""

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
from misen_executor_dask import DaskExecutor
from misen_workspace_disk.workspace import DiskWorkspace
import dktasks as dk

d, ws_dir, address = sys.argv[1], sys.argv[2], sys.argv[3]
ws = DiskWorkspace(directory=ws_dir, fsync=False)
blocked = Task(dk.block, directory=d, name="b", child=True)
dependent = Task(dk.after, dep=blocked.T, tag="c")
other = Task(dk.block, directory=d, name="o")
settings = {"address": address} if address else {"workers": 2}
try:
    run([dependent, other], executor=DaskExecutor(grace_period=3, **settings), workspace=ws)
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
    sys.exit(130)
print("FINISHED", flush=True)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _interrupt(
    d: Path, workspace: Any, project: Path, tmp_path: Path, address: str
) -> tuple[list[int], list[int]]:
    """Start the run, SIGINT it once both units run; return the units' pids (that must be gone) and the pids of
    the Dask workers that ran them."""
    script = tmp_path / "run_it.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(d), workspace.root, address],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(d / "b.running", proc)
        wait_for(d / "o.running", proc)
        b, o = json.loads((d / "b.running").read_text()), json.loads((d / "o.running").read_text())
        pids = [b["pid"], b["child"], o["pid"]]
        workers = [b["worker"], o["worker"]]
        assert all(alive(p) for p in pids + workers)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (out, err[-3000:])
    assert "INTERRUPTED" in out
    return pids, workers


def _gone(pids: list[int], timeout: float = 15.0) -> bool:
    deadline = time.time() + timeout
    while any(alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.05)
    return not any(alive(p) for p in pids)


def _check_after(dk: ModuleType, workspace: Any, d: Path) -> None:
    blocked = Task(dk.block, directory=str(d), name="b", child=True)
    other = Task(dk.block, directory=str(d), name="o")
    for task in (blocked, other):
        assert (cache.failure(workspace, task) or {}).get("status") == "cancelled"
        assert workspace.lock_holder(task.hash) is None
        assert not cache.is_cached(workspace, task)


def test_ctrl_c_closes_the_cluster_misen_started(
    dk: ModuleType, workspace: Any, in_project: Path, tmp_path: Path
) -> None:
    d = tmp_path / "signals"
    d.mkdir()
    (d / "hold").touch()
    pids, workers = _interrupt(d, workspace, in_project, tmp_path, "")
    assert _gone(pids)
    assert _gone(workers)  # the cluster misen started is closed: its worker processes are gone
    _check_after(dk, workspace, d)


def test_ctrl_c_leaves_a_cluster_it_connected_to_running_and_the_next_run_finishes(
    dk: ModuleType, workspace: Any, in_project: Path, tmp_path: Path, dask_cluster: Any
) -> None:
    from distributed import Client
    from misen.reporting import PlainReporter
    from misen.runner import run
    from misen_executor_dask import DaskExecutor

    d = tmp_path / "signals"
    d.mkdir()
    (d / "hold").touch()
    address = dask_cluster.scheduler_address
    pids, workers = _interrupt(d, workspace, in_project, tmp_path, address)
    assert _gone(pids)
    assert all(alive(w) for w in workers)  # the cluster it connected to keeps its workers
    _check_after(dk, workspace, d)
    with Client(address, set_as_default=False) as client:
        assert len(client.scheduler_info()["workers"]) == 2
    (d / "hold").unlink()
    dependent = Task(dk.after, dep=Task(dk.block, directory=str(d), name="b", child=True).T, tag="c")
    other = Task(dk.block, directory=str(d), name="o")
    import io

    report = run(
        [dependent, other],
        executor=DaskExecutor(address=address, grace_period=2.0),
        workspace=workspace,
        reporter=PlainReporter(io.StringIO()),
    )
    assert report.ok and dependent.result(workspace=workspace) == "after c"
