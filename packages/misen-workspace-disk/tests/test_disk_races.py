"""Runs racing over one diamond-shaped experiment on one disk workspace: every task executes exactly once, the run
that started first completes everything it asked for (it waits for tasks of later runs), no run waits forever,
and ``wait=True`` makes every run complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

DIAMOND = textwrap.dedent(
    '''
    import os, time
    from misen import Task, meta

    def _mark(name):
        with open(os.path.join(os.environ["RACE_MARKS"], f"{name}.{os.getpid()}.{time.time_ns()}"), "w"):
            pass

    @meta(id="RACEBASE01", cache=True)
    def base(n: int) -> int:
        _mark("base"); time.sleep(0.15); return n

    @meta(id="RACELEFT01", cache=True)
    def left(x: int) -> int:
        _mark("left"); time.sleep(0.1); return x + 1

    @meta(id="RACERIGHT1", cache=True)
    def right(x: int) -> int:
        _mark("right"); time.sleep(0.1); return x + 2

    @meta(id="RACETOP001", cache=True)
    def top(a: int, b: int) -> int:
        _mark("top"); return a * b

    def graph(n):
        b = Task(base, n=n)
        return Task(top, a=Task(left, x=b.T).T, b=Task(right, x=b.T).T)
    '''
)

RUNNER = textwrap.dedent(
    '''
    import json, sys, time
    from misen import run
    from misen.reporting import PlainReporter
    from diamond import graph
    go = float(sys.argv[2])
    while time.time() < go:
        time.sleep(0.001)
    report = run(graph(int(sys.argv[1])), executor="in-process", workspace="disk",
                 reporter=PlainReporter(verbose=False), wait=sys.argv[3] == "wait")
    print(json.dumps({"ok": report.ok, "started": report.started, "run": report.run_id,
                      "value": graph(int(sys.argv[1])).result() if report.ok else None}))
    '''
)


@pytest.fixture
def race_project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "race"\nversion = "0"\n')
    (root / ".misen.toml").write_text('[workspace]\ntype = "disk"\ndirectory = ".misen"\nfsync = false\n')
    (root / "diamond.py").write_text(DIAMOND)
    (root / "runner.py").write_text(RUNNER)
    return root


def _race(root: Path, runs: int, rounds: int, *, wait: bool) -> None:
    env = {**os.environ, "PYTHONPATH": str(root)}
    for round_no in range(rounds):
        marks = root / f"marks{round_no}"
        marks.mkdir()
        env["RACE_MARKS"] = str(marks)
        go = time.time() + 1.0  # every process is started and waiting by then: they all begin together
        procs = [
            subprocess.Popen(
                [sys.executable, "runner.py", str(round_no), str(go), "wait" if wait else "no"],
                cwd=root,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(runs)
        ]
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)  # a deadlock would end here
            assert proc.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        executed = sorted(p.name.split(".")[0] for p in marks.iterdir())
        assert executed == ["base", "left", "right", "top"], (round_no, executed)
        # The run that started first completes (of runs that started at the same instant, the clock's
        # resolution, the one with the smallest run id: misen.worker.yields_to).
        first = min(results, key=lambda r: (r["started"], r["run"]))
        assert first["ok"] and first["value"] == (round_no + 1) * (round_no + 2), (round_no, results)
        if wait:
            assert all(r["ok"] for r in results), (round_no, results)


def test_two_racing_runs(race_project: Path) -> None:
    _race(race_project, runs=2, rounds=20, wait=False)


def test_four_racing_runs(race_project: Path) -> None:
    _race(race_project, runs=4, rounds=20, wait=False)


def test_racing_runs_that_wait_all_complete(race_project: Path) -> None:
    _race(race_project, runs=3, rounds=5, wait=True)
