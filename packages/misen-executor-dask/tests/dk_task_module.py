"""Task functions for the Dask executor's tests (copied into a test project as the package ``dktasks``).

Not a test module: conftest.py writes this text into ``<project>/src/dktasks/__init__.py`` so the units' processes
on the Dask workers import it from the run's snapshot, as they would a researcher's project.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from misen import ASSIGNED_RESOURCES, meta

VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "ZE_AFFINITY_MASK",
)


def _resources(res: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
    return res or {}


def _wait_for(path: Path, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if time.time() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)


def _mark(directory: str | None, name: str) -> None:
    """Append a line to ``<directory>/<name>``: one line per time a task body ran."""
    if directory:
        with open(Path(directory, name), "a") as f:
            f.write(f"{os.getpid()}\n")


@meta(id="DK-SQUARE", cache=True)
def square(x: int, marks: str | None = None) -> int:
    _mark(marks, f"square-{x}")
    return x * x


@meta(id="DK-ADD3", cache=True)
def add3(a: int, b: int, c: int) -> int:
    return a + b + c


@meta(id="DK-TOTAL", cache=True)
def total(values: list[int]) -> int:
    return sum(values)


@meta(id="DK-FAIL", cache=True)
def fail(x: int, marks: str) -> int:
    _mark(marks, f"fail-{x}")
    raise ValueError(f"fail {x}")


@meta(id="DK-KILL-WORKER", cache=True)
def kill_worker_once(marks: str) -> str:
    """First run: kill the Dask worker this unit runs under (the parent of this process) and hang; then: finish."""
    first = not Path(marks, "killed").exists()
    _mark(marks, "attempts")
    if first:
        Path(marks, "killed").write_text(str(os.getppid()))
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(60)
    return "survived"


@meta(id="DK-PROBE", cache=True, resources=_resources)
def probe(
    name: str,
    res: dict[str, Any] | None = None,
    meet: list[str] | None = None,
    rendezvous: str = "",
    assigned: Any = ASSIGNED_RESOURCES,
) -> dict[str, Any]:
    """Record what the unit's process sees; optionally wait until the tasks in ``meet`` began too."""
    if rendezvous:
        Path(rendezvous, f"{name}.started").touch()
        for other in meet or ():
            _wait_for(Path(rendezvous, f"{other}.started"))
    return {
        "name": name,
        "pid": os.getpid(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "env": {k: os.environ.get(k) for k in VARIABLES},
        "assigned_cpus": list(assigned.cpus),
        "assigned_gpus": list(assigned.gpus),
    }


@meta(id="DK-AFTER", cache=True)
def after(dep: Any, tag: str = "") -> str:
    return f"after {tag}"


@meta(id="DK-BLOCK", cache=True)
def block(directory: str, name: str, child: bool = False) -> str:
    """Announce itself (pid, and a child process's pid), then wait while ``<directory>/hold`` exists."""
    info: dict[str, Any] = {"pid": os.getpid(), "worker": os.getppid()}
    if child:
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        info["child"] = proc.pid
    Path(directory, f"{name}.running").write_text(json.dumps(info))
    while Path(directory, "hold").exists():
        time.sleep(0.02)
    return name


def _time_limit(minutes: float = 0.0, **_: Any) -> dict[str, Any]:
    return {"time": minutes}


@meta(id="DK-HANG", cache=True, resources=_time_limit)
def hang(minutes: float, seconds: float = 600.0) -> str:
    time.sleep(seconds)
    return "woke up"


@meta(id="DK-FLAKY", cache=True)
def flaky(x: int, marks: str) -> int:
    """Quick; fails when ``x`` ends in 3."""
    _mark(marks, f"flaky-{x}")
    if x % 10 == 3:
        raise ValueError(f"flaky {x}")
    return x


@meta(id="DK-KILL-AT", cache=True)
def kill_worker_at(x: int, at: int, marks: str) -> int:
    """Quick, except the first run with ``x == at``: it kills the Dask worker it runs under and hangs."""
    _mark(marks, f"kill-at-{x}")
    if x == at and not Path(marks, "killed").exists():
        Path(marks, "killed").write_text(str(os.getppid()))
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(60)
    return x


@meta(id="DK-NAP", cache=True)
def nap(x: int, seconds: float) -> int:
    time.sleep(seconds)
    return x
