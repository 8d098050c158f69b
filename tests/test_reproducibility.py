"""Issue 11 end to end: real edits to real files between runs, in subprocesses, through the command line.

Each step edits the demo project, runs `python -m repro_demo.flow ...` in a fresh interpreter, and checks which
tasks executed (counted by the lines they append to a log file), what `list` and `why` show, and that early cutoff
holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

UTIL = '''
"""Helpers of the demo project."""

SCALE = 2


def helper(x):
    return x * SCALE


def unrelated():
    return "never reached by a task"
'''

FLOW = '''
"""The demo experiment."""

import os
import random

from misen import Experiment, Task, meta

from repro_demo import util
from repro_demo.util import helper


def record(name):
    with open(os.environ["REPRO_LOG"], "a") as f:
        f.write(name + "\\n")


@meta(id="LOADAAAAAA", cache=True)
def load(n: int) -> list:
    record("load")
    return list(range(n))


@meta(id="PROCAAAAAA", cache=True)
def process(data: list) -> int:
    """Sum of scaled values."""
    record("process")
    return sum(helper(x) for x in data)  # the core of the method


@meta(id="REPOAAAAAA", cache=True)
def report(total: int) -> str:
    record("report")
    return f"total={total}"


@meta(id="NOISYAAAAA", cache=True)
def noisy(seed_hint: int) -> float:
    record("noisy")
    return random.random()


class Flow(Experiment):
    n: int = 4

    def tasks(self):
        data = Task(load, n=self.n)
        total = Task(process, data=data.T)
        return {"load": data, "process": total, "report": Task(report, total=total.T), "noisy": Task(noisy, seed_hint=1)}


if __name__ == "__main__":
    Flow.cli()
'''


class Demo:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.pkg = root / "src" / "repro_demo"
        self.pkg.mkdir(parents=True)
        (root / "pyproject.toml").write_text('[project]\nname = "repro-demo"\nversion = "0"\n')
        (root / ".misen.toml").write_text('[executor]\ntype = "in-process"\n\n[workspace]\ntype = "disk"\n')
        (self.pkg / "__init__.py").write_text("")
        (self.pkg / "util.py").write_text(UTIL)
        (self.pkg / "flow.py").write_text(FLOW)
        self.log = root / "executions.log"

    def edit(self, module: str, old: str, new: str) -> None:
        path = self.pkg / f"{module}.py"
        text = path.read_text()
        assert old in text, f"{old!r} not in {module}.py"
        path.write_text(text.replace(old, new, 1))

    def restore(self) -> None:
        (self.pkg / "util.py").write_text(UTIL)
        (self.pkg / "flow.py").write_text(FLOW)

    def cli(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(self.root / "src"), "REPRO_LOG": str(self.log)}
        env.pop("MISEN_CONFIG", None)
        proc = subprocess.run(
            [sys.executable, "-m", "repro_demo.flow", *args], cwd=self.root, env=env, capture_output=True, text=True,
            timeout=120,
        )
        if ok:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def run(self) -> list[str]:
        """Run the experiment; return the tasks that executed, in order."""
        before = self.log.read_text().splitlines() if self.log.exists() else []
        self.cli("run")
        after = self.log.read_text().splitlines()
        return [name for name in after[len(before):] if name != "noisy"]

    def marks(self) -> dict[str, str]:
        """The status mark `list` shows for each named task (lines read "<mark> <name>  <task>")."""
        out = self.cli("list").stdout
        return {parts[1]: parts[0] for parts in (line.split() for line in out.splitlines()) if len(parts) > 2}


@pytest.fixture
def demo(tmp_path: Path) -> Demo:
    return Demo(tmp_path / "demo")


def test_edits_recompute_exactly_what_they_affect(demo: Demo) -> None:
    assert demo.run() == ["load", "process", "report"]
    assert demo.run() == []
    assert set(demo.marks().values()) == {"✓"}

    # Comments, docstrings and formatting change nothing.
    demo.edit("flow", "# the core of the method", "# the heart of the method")
    demo.edit("flow", '"""Sum of scaled values."""', '"""Sum of the scaled values (documented)."""')
    demo.edit("flow", "return sum(helper(x) for x in data)", "return sum( helper(x)  for x in data )")
    assert demo.run() == []

    # Code no task reaches changes nothing.
    demo.edit("util", 'return "never reached by a task"', 'return "still never reached"')
    assert demo.run() == []

    # A helper in another module: process recomputes, and so does report, because the result changed.
    demo.edit("util", "return x * SCALE", "return x * SCALE + 1")
    marks = demo.marks()
    assert marks["load"] == "✓" and marks["process"] == "◐" and marks["report"] == "◐"
    why = demo.cli("why", "process").stdout
    assert "repro_demo.util.helper" in why and "changed" in why
    assert demo.run() == ["process", "report"]

    # A refactor of the task body with the same result: process recomputes, report is cut off early.
    demo.edit("flow", "return sum( helper(x)  for x in data )", "return sum([helper(x) for x in data])")
    assert demo.run() == ["process"]

    # A module-level constant.
    demo.edit("util", "SCALE = 2", "SCALE = 3")
    assert demo.run() == ["process", "report"]

    # Undo everything: the results of the original code are still in the workspace.
    demo.restore()
    assert demo.run() == []
    assert set(demo.marks().values()) == {"✓"}


def test_accept_links_without_running_and_provenance_shows_it(demo: Demo) -> None:
    assert demo.run() == ["load", "process", "report"]
    demo.edit("flow", "return sum(helper(x) for x in data)", "return sum(map(helper, data))")
    assert demo.marks()["process"] == "◐"
    out = demo.cli("accept", "process").stdout
    assert "process" in out
    assert demo.marks()["process"] == "✓"
    assert demo.run() == []
    prov = demo.cli("result", "process", "--provenance").stdout
    assert "accepted" in prov


def test_provenance_records_how_a_result_was_made(demo: Demo) -> None:
    demo.run()
    prov = demo.cli("result", "report", "--provenance").stdout
    for field in ("host", "duration", "executor", "fingerprint", "python", "misen", "environment"):
        assert field in prov, prov


def test_verify_names_the_nondeterministic_task(demo: Demo) -> None:
    demo.run()
    listing = sorted((demo.root / ".misen").rglob("*"))
    proc = demo.cli("verify", ok=False)
    out = proc.stdout + proc.stderr
    assert "noisy" in out
    lines = [line for line in out.splitlines() if "noisy" in line]
    assert any("differ" in line or "non-deterministic" in line for line in lines), out
    for name in ("load", "process", "report"):
        assert any(name in line and ("same" in line or "✓" in line) for line in out.splitlines()), out
    # The workspace is not changed by verify.
    assert sorted((demo.root / ".misen").rglob("*")) == listing


def test_code_changes_ignore_gives_the_seeds_identity(demo: Demo) -> None:
    (demo.root / ".misen.toml").write_text(
        '[executor]\ntype = "in-process"\n\n[workspace]\ntype = "disk"\n\n[cache]\ncode_changes = "ignore"\n'
    )
    assert demo.run() == ["load", "process", "report"]
    demo.edit("util", "return x * SCALE", "return x * SCALE + 1")
    assert demo.run() == []  # only the id and arguments count
