"""End to end through `misen.runner.run`: caching, failures, logs, WORK_DIR, staleness and duplicate runs."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

PROJECT = """
import os
from pathlib import Path
from misen import cache
from misen import Task, meta, WORK_DIR

OUT = Path(os.environ["DISK_E2E_OUT"])

def _mark(name):
    with open(OUT / "calls.txt", "a") as f:
        f.write(f"{name} {os.getpid()}\\n")

@meta(id="DISKE2E001", cache=True)
def numbers(n: int) -> list:
    _mark(f"numbers{n}")
    print(f"making {n} numbers")
    return list(range(n))

@meta(id="DISKE2E002", cache=True)
def total(xs: list) -> int:
    _mark("total")
    return sum(xs)

@meta(id="DISKE2E003", cache=True)
def flaky(k: int, work_dir: Path) -> str:
    _mark(f"flaky{k}")
    print("flaky starts")
    ckpt = work_dir / "checkpoint"
    if not ckpt.exists():
        ckpt.write_text("half done")
        raise ValueError("preempted, please resume")
    return ckpt.read_text() + " then finished"

@meta(id="DISKE2E004", cache=True)
def slow(i: int) -> int:
    import time
    _mark(f"slow{i}")
    time.sleep(0.06)
    return i

def graph(n=10):
    return Task(total, xs=Task(numbers, n=n).T)

def flaky_task():
    return Task(flaky, k=1, work_dir=WORK_DIR)
"""

DRIVER = """
from misen import cache
import json, sys
from misen.runner import run
from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
import proj

ws = DiskWorkspace(DiskWorkspaceSettings(directory=sys.argv[1]))
task = getattr(proj, sys.argv[2])()
report = run(task, executor="in-process", workspace=ws)
out = {"ok": report.ok, "counts": report.counts(), "status": cache.status(ws, task)}
if report.ok:
    out["result"] = task.result(workspace=ws)
print("RESULT", json.dumps(out))
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "proj.py").write_text(PROJECT)
    (tmp_path / "out").mkdir()
    return tmp_path


def drive(python, project: Path, what: str) -> dict:
    import json

    env = {**os.environ, "DISK_E2E_OUT": str(project / "out"), "PYTHONPATH": str(project)}
    proc = python(DRIVER, str(project / "ws"), what, cwd=project, env=env)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and line, proc.stdout + proc.stderr
    return json.loads(line[-1][7:])


def calls(project: Path) -> list[str]:
    path = project / "out" / "calls.txt"
    return [ln.split()[0] for ln in path.read_text().splitlines()] if path.exists() else []


def test_cached_across_processes(project: Path, python) -> None:
    first = drive(python, project, "graph")
    assert first["ok"] and first["result"] == 45 and first["status"] == "done"
    assert calls(project) == ["numbers10", "total"]
    second = drive(python, project, "graph")
    assert second["result"] == 45
    assert calls(project) == ["numbers10", "total"]  # nothing ran again
    from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings

    ws = DiskWorkspace(DiskWorkspaceSettings(directory=str(project / "ws")))
    names = sorted(ws.get_record("task", k)["name"] for k in ws.iter_records("task"))
    assert names == ["numbers", "total"]
    # every task has its log, and it holds what the task printed: quick tasks that succeeded in process keep it in
    # their record (provenance log_text), and write no log file
    assert not (project / "ws" / "logs" / "task").exists()
    records = [ws.get_record("task", k) for k in ws.iter_records("task")]
    provs = [(ws.get_record("resolved", rec["resolved"]) or {}).get("provenance") or {} for rec in records]
    assert all(prov.get("log") is None and prov.get("log_text") for prov in provs)
    assert any("making 10 numbers" in prov["log_text"] for prov in provs)


def test_failure_recorded_then_replaced_and_work_dir_kept(project: Path, python) -> None:
    first = drive(python, project, "flaky_task")
    assert not first["ok"] and first["status"] == "failed"
    from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings

    ws = DiskWorkspace(DiskWorkspaceSettings(directory=str(project / "ws")))
    (key,) = list(ws.iter_records("failure"))
    failure = ws.get_record("failure", key)
    assert "preempted, please resume" in failure["error"]
    assert "flaky starts" in Path(failure["log"]).read_text()
    assert (project / "ws" / "work" / key / "checkpoint").read_text() == "half done"
    second = drive(python, project, "flaky_task")
    assert second["ok"] and second["result"] == "half done then finished" and second["status"] == "done"
    assert list(ws.iter_records("failure")) == []
    assert calls(project) == ["flaky1", "flaky1"]
    # The failed attempt's log is a file; the second attempt, quick and successful, keeps its log in its record.
    logs = ws.list_logs("task", key)
    assert [e.path for e in logs] == [Path(failure["log"])] and ws.latest_attempt("task", key) == logs[0].attempt
    prov = ws.get_record("resolved", ws.get_record("task", key)["resolved"])["provenance"]
    assert prov["log"] is None and "flaky starts" in prov["log_text"] and prov["start"] >= logs[0].mtime - 1


def test_edit_makes_result_stale(project: Path, python) -> None:
    drive(python, project, "graph")
    source = (project / "proj.py").read_text()
    (project / "proj.py").write_text(source.replace("return sum(xs)", "return sum(xs) + 1"))
    probe = textwrap.dedent(
        """
        import sys
        from misen import cache
        from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
        import proj
        ws = DiskWorkspace(DiskWorkspaceSettings(directory=sys.argv[1]))
        t = proj.graph()
        print("STATUS", cache.status(ws, t), cache.status(ws, t.dependencies[0]))
        """
    )
    env = {**os.environ, "DISK_E2E_OUT": str(project / "out"), "PYTHONPATH": str(project)}
    proc = python(probe, str(project / "ws"), cwd=project, env=env)
    assert "STATUS stale done" in proc.stdout, proc.stdout + proc.stderr
    after = drive(python, project, "graph")
    assert after["result"] == 46
    assert calls(project) == ["numbers10", "total", "total"]


RACES = 50


def _race_runner(project: str, barrier, results, _name: str) -> None:
    import sys

    os.environ["DISK_E2E_OUT"] = os.path.join(project, "out")
    sys.path.insert(0, project)
    import io
    from contextlib import redirect_stdout

    import proj  # type: ignore[import-not-found]
    from misen import Task
    from misen.runner import run
    from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings

    ws = DiskWorkspace(DiskWorkspaceSettings(directory=os.path.join(project, "ws")))
    for i in range(RACES):
        barrier.wait()
        with redirect_stdout(io.StringIO()):
            report = run(Task(proj.slow, i=i), executor="in-process", workspace=ws)
        (outcome,) = report.outcomes.values() if report.outcomes else (None,)
        results.put(
            (i, outcome.status if outcome else "cached-before-plan", outcome.error if outcome else None)
        )


def test_duplicate_runs_execute_a_task_once(project: Path, racing_pair) -> None:  # type: ignore[no-untyped-def]
    rows = racing_pair(_race_runner, (str(project),), replies=2 * RACES, timeout=120)
    executed = calls(project)
    assert sorted(executed) == sorted(f"slow{i}" for i in range(RACES))  # each exactly once
    seen: dict[str, int] = {}
    for i in range(RACES):
        statuses = sorted(s for j, s, _ in rows if j == i)
        assert "done" in statuses and len(statuses) == 2
        loser = statuses[0] if statuses[0] != "done" else statuses[1]
        seen[loser] = seen.get(loser, 0) + 1
        for j, status, error in rows:
            if j == i and status == "failed":
                assert "already running" in error and "pid" in error
    print("losers:", seen)
    assert seen.get("failed", 0) > 0, "the runs never overlapped; the test proves nothing about the lock"
