"""Task functions for the local executor's tests (copied into a test project as the package ``lxtasks``).

Not a test module: conftest.py writes this text into ``<project>/src/lxtasks/__init__.py`` so worker processes
import it from the run's snapshot, as they would a researcher's project.
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
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
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


@meta(id="LX-PROBE", cache=True, resources=_resources)
def probe(
    name: str,
    seconds: float = 0.0,
    res: dict[str, Any] | None = None,
    meet: list[str] | None = None,
    rendezvous: str = "",
    assigned: Any = ASSIGNED_RESOURCES,
) -> dict[str, Any]:
    """Record what the task process sees; optionally meet other tasks (each waits until all in ``meet`` began)."""
    start = time.time()
    if rendezvous:
        Path(rendezvous, f"{name}.started").touch()
        for other in meet or ():
            _wait_for(Path(rendezvous, f"{other}.started"))
    time.sleep(seconds)
    return {
        "name": name,
        "pid": os.getpid(),
        "start": start,
        "end": time.time(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "env": {k: os.environ.get(k) for k in VARIABLES},
        "assigned_cpus": list(assigned.cpus),
        "assigned_gpus": list(assigned.gpus),
        "assigned_runtime": assigned.gpu_runtime,
    }


@meta(id="LX-AFTER", cache=True)
def after(dep: Any, tag: str = "") -> str:
    return f"after {tag}"


@meta(id="LX-RAISE", cache=True)
def raises(message: str) -> int:
    print(f"about to fail: {message}")
    raise RuntimeError(message)


@meta(id="LX-EXIT", cache=True)
def hard_exit(code: int) -> int:
    print("exiting hard", flush=True)
    os._exit(code)


@meta(id="LX-CHEAP", cache=True)
def cheap(i: int, exit_code: int = 0) -> dict[str, int]:
    """A cheap task (batched once seen); with ``exit_code`` it ends its worker process instead."""
    if exit_code:
        os._exit(exit_code)
    return {"i": i, "pid": os.getpid()}


@meta(id="LX-KILL", cache=True)
def kill_self(tag: str = "") -> int:
    print("killing myself", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    return 0


def _time_limit(minutes: float = 0.0, **_: Any) -> dict[str, Any]:
    return {"time": minutes}


@meta(id="LX-HANG", cache=True, resources=_time_limit)
def hang(minutes: float, marker: str, ignore_term: bool = False, seconds: float = 600.0) -> str:
    """Sleep past the time limit; with ``ignore_term`` survive SIGTERM so only SIGKILL ends it."""
    if ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    Path(marker).write_text(json.dumps({"pid": os.getpid()}))
    print("hanging", flush=True)
    time.sleep(seconds)
    return "woke up"


@meta(id="LX-CHATTY", cache=True)
def chatty(tag: str) -> str:
    print(f"stdout line {tag}", flush=True)
    print(f"stderr line {tag}", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-c", f"print('child process line {tag}')"], check=True)
    os.system(f"echo shell line {tag} 1>&2")
    return tag


@meta(id="LX-ENV", cache=True)
def read_env(names: list[str], tag: str = "") -> dict[str, str | None]:
    return {n: os.environ.get(n) for n in names}


@meta(id="LX-ENVLEN", cache=True)
def env_length(name: str, tag: str = "") -> int:
    """How long an environment value is (the value itself never leaves the task)."""
    return len(os.environ.get(name, ""))


@meta(id="LX-BYTES", cache=True)
def big_bytes(mib: int, tag: str = "") -> bytes:
    return b"\x01" * (mib * 1024 * 1024)


@meta(id="LX-BLOCK", cache=True)
def block(directory: str, name: str, child: bool = False) -> str:
    """Announce itself (pid, and a child process's pid), then wait while ``<directory>/hold`` exists."""
    info: dict[str, Any] = {"pid": os.getpid()}
    if child:
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        info["child"] = proc.pid
    Path(directory, f"{name}.running").write_text(json.dumps(info))
    while Path(directory, "hold").exists():
        time.sleep(0.02)
    Path(directory, f"{name}.ran.{os.getpid()}.{time.time_ns()}").touch()
    return name


@meta(id="LX-FORK", cache=True)
def fork_and_exit(marker: str) -> int:
    """Fork a child that keeps every inherited descriptor open, then end the task's process abruptly."""
    pid = os.fork()
    if pid == 0:
        time.sleep(120)
        os._exit(0)
    Path(marker).write_text(json.dumps({"child": pid}))
    os._exit(5)


@meta(id="LX-DETACH", cache=True)
def detach(directory: str, how: str, wait: bool = False) -> str:
    """Start a sleeper that leaves the task's process group (``session``) or is orphaned (``double-fork``), write
    its pid to ``<directory>/<how>.pid``; with ``wait``, then wait while ``<directory>/hold`` exists."""
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    if how == "session":
        pid = subprocess.Popen(sleeper, start_new_session=True).pid
    else:
        read, write = os.pipe()
        child = os.fork()
        if child == 0:
            os.setsid()
            grandchild = os.fork()
            if grandchild == 0:
                os.execv(sys.executable, sleeper)
            os.write(write, str(grandchild).encode())
            os._exit(0)
        os.waitpid(child, 0)
        pid = int(os.read(read, 64))
    Path(directory, f"{how}.pid").write_text(str(pid))
    while wait and Path(directory, "hold").exists():
        time.sleep(0.02)
    return how


@meta(id="LX-MEMORY", cache=True, resources={"memory": 0.25})
def use_memory(mib: int) -> int:
    """Ask for 0.25 GiB, then touch ``mib`` MiB."""
    block = bytearray(mib * 2**20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return len(block)


@meta(id="LX-TALK", cache=True)
def talk_slowly(tag: str, seconds: float) -> str:
    """Print, wait, print again (and let a subprocess print): a log that goes to a file while the task runs."""
    print(f"before {tag}", flush=True)
    time.sleep(seconds)
    print(f"after {tag}", flush=True)
    subprocess.run(["sh", "-c", f"echo shell after {tag}"], check=True)
    return tag
