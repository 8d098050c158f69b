"""kill -9 a run mid-write 20 times at random moments (in-process and local executors in turn), then run again:
no damaged result is ever returned, every stored result passes a full check, and no staging folder is left."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from misen import cache
from misen.check import check_workspace
from misen.errors import NotCachedError
from misen_workspace_disk import DiskWorkspace

PARTS, MIB = 8, 24  # enough bytes that a run outlasts most kill delays, on a quiet machine too

TASKS = """
import random
import time
from misen import meta


@meta(id="KILLLOOP-PART", cache=True)
def part(i: int, mib: int) -> bytes:
    return random.Random(i).randbytes(mib * 2**20)


@meta(id="KILLLOOP-SUM", cache=True)
def summary(parts: list, tag: str) -> int:
    time.sleep(1.0)  # every run outlives the longest kill delay, however fast the machine stores the parts
    return sum(len(p) for p in parts)
"""

DRIVER = """
import io, sys
from misen import InProcessExecutor, Task
from misen.reporting import PlainReporter
from misen.runner import run
from misen_workspace_disk import DiskWorkspace
import killloop

executor, tag, first, last, mib = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
if executor == "local":
    from misen_executor_local import LocalExecutor
    ex = LocalExecutor(num_cpus=2)
else:
    ex = InProcessExecutor()
tasks = [Task(killloop.part, i=i, mib=mib) for i in range(first, last)]
total = Task(killloop.summary, parts=[t.T for t in tasks], tag=tag)
print("started", flush=True)
report = run([total], executor=ex, workspace=DiskWorkspace(directory=".misen"), reporter=PlainReporter(io.StringIO()))
print("ok" if report.ok else "failed", flush=True)
"""


def _expected(i: int) -> bytes:
    return random.Random(i).randbytes(MIB * 2**20)


@pytest.mark.slow
def test_kill_9_loop_never_returns_damage_and_leaves_no_staging(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "src" / "killloop").mkdir(parents=True)
    (root / "src" / "killloop" / "__init__.py").write_text(textwrap.dedent(TASKS))
    (root / "pyproject.toml").write_text('[project]\nname = "killloop"\nversion = "0"\n')
    (root / "driver.py").write_text(textwrap.dedent(DRIVER))
    env_path = str(root / "src")
    sys.path.insert(0, env_path)
    try:
        import killloop  # type: ignore[import-not-found]
    finally:
        sys.path.remove(env_path)
    from misen import Task

    ws = DiskWorkspace(directory=str(root / ".misen"))
    tasks = [Task(killloop.part, i=i, mib=MIB) for i in range(20 + PARTS)]
    rng = random.Random(20261204)
    env = {**os.environ, "PYTHONPATH": env_path}
    kills = 0
    # the local executor where it is installed (not in the workspace-disk tox environment)
    local = importlib.util.find_spec("misen_executor_local") is not None
    for n in range(20):
        executor = "local" if local and n % 2 else "in-process"
        proc = subprocess.Popen(
            # each run overlaps the previous one (cached parts) and adds one of its own (always work to cut)
            [sys.executable, "driver.py", executor, f"kill{n}", str(n), str(n + PARTS), str(MIB)],
            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        time.sleep(rng.uniform(0.05, 0.8))  # while parts are written, or in the summary's second after them
        if proc.poll() is None:
            kills += 1
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the run and its worker processes, mid-write
        proc.wait()
        for i, task in enumerate(tasks):  # whatever is cached is exactly what the task computed
            try:
                value = cache.load(ws, task)
            except NotCachedError:
                continue
            assert value == _expected(i), f"a damaged result of part {i} was returned after kill {n}"
    assert kills >= 15, "most runs ended before the kill: the loop proves little"
    final = subprocess.run(
        [sys.executable, "driver.py", "local" if local else "in-process", "final", "0", str(20 + PARTS), str(MIB)],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert final.stdout.splitlines()[-1] == "ok", final.stdout + final.stderr
    for i, task in enumerate(tasks):
        assert cache.load(ws, task) == _expected(i)
    report = check_workspace(ws)
    assert report.damaged == [] and report.results >= len(tasks)
    leftovers = sorted(p.name for p in (root / ".misen" / "tmp").iterdir() if p.name.startswith("stage-"))
    assert leftovers == [], leftovers
