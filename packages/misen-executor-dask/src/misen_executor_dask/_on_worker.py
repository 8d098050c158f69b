"""What runs inside a Dask worker: the Dask task of one misen unit, and the worker's share of CPUs and GPUs.

`run_unit` is the function the executor submits, once per unit. The Dask scheduler only starts it where the
unit's resources (``CPU``, ``MEMORY``, ``GPU``...) fit; here it picks which of the worker's CPU cores and GPU
devices the unit gets, hands the unit to a child process bound to them (`misen_executor_dask._child`), and
returns the unit's outcome: a small dict. The result itself is written to the workspace by the child.

A unit's failure is an outcome, never an exception, so Dask never retries it. An exception out of `run_unit`
only means the worker could not run the unit at all. When the worker itself dies mid-unit, the scheduler
reruns the task elsewhere; that attempt first waits for the dead attempt's task lock to be released.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from misen_executor_dask._binding import (
    CPU,
    GPU_RESOURCES,
    binding_env,
    format_indices,
    usable_cpus,
    visible_devices,
)
from misen_executor_dask._child import HEADER

__all__ = ["LAYOUT_VARIABLE", "cancel_run", "run_unit", "worker_slot"]

#: Set by misen on the workers of a cluster it starts on this machine: a JSON list of slots, one per worker
#: (``{"cpus": [0, 1], "cuda": [0]}``); worker ``n`` owns slot ``n % len(slots)``. Without it a worker hands out
#: the cores its process may run on and the first devices of its GPU resource count.
LAYOUT_VARIABLE = "MISEN_DASK_LAYOUT"
#: Variables naming the batch job a worker runs in, recorded as the job id in a result's provenance.
_JOB_VARIABLES = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "JOB_ID", "CONDOR_JOBID")
#: Idle child processes a worker keeps for later units, beyond which the oldest is ended.
_SPARE_CHILDREN = 4
#: How long a rerun waits for the task lock of its previous, dead attempt (seconds).
_STALE_LOCK_WAIT = 120.0
_TICK = 0.1


def worker_slot(name: Any) -> dict[str, list[int]] | None:
    """This worker's slot of the layout in `LAYOUT_VARIABLE` (``None`` without a layout)."""
    import json

    raw = os.environ.get(LAYOUT_VARIABLE)
    if not raw:
        return None
    slots = json.loads(raw)
    try:
        index = int(name)
    except (TypeError, ValueError):
        index = 0
    slot: dict[str, list[int]] = slots[index % len(slots)]
    return slot


class _Child:
    """One child process, bound for its whole life to a thread count and a device set."""

    def __init__(self, key: tuple[Any, ...], env: dict[str, str]) -> None:
        self.key = key
        full = dict(os.environ)
        full.update(env)
        full["MISEN_DASK_PARENT"] = str(os.getpid())
        # -P: the current directory must not shadow the snapshot the child imports the project from.
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "misen_executor_dask._child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=full,
            start_new_session=True,
            close_fds=True,
        )
        self.pid = self.proc.pid
        assert self.proc.stdout is not None
        self.fd = self.proc.stdout.fileno()
        self.buffer = bytearray()

    def send(self, request: dict[str, Any]) -> bool:
        import pickle

        data = pickle.dumps(request, protocol=5)
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(HEADER.pack(len(data)) + data)
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def read(self) -> tuple[dict[str, Any] | None, bool]:
        """(the outcome if it is complete, whether the output ended); call when the pipe is readable."""
        import pickle

        try:
            chunk = os.read(self.fd, 1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            return None, True
        self.buffer += chunk
        if len(self.buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self.buffer)
            if len(self.buffer) >= HEADER.size + size:
                message = pickle.loads(bytes(self.buffer[HEADER.size : HEADER.size + size]))
                del self.buffer[: HEADER.size + size]
                return message, False
        return None, False

    def signal(self, sig: int) -> None:
        """Signal the child's process group: the child and what its task started."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def close(self) -> None:
        """End an idle child (end of input), and make sure nothing it started is left."""
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait()
        self.signal(signal.SIGKILL)
        with contextlib.suppress(Exception):
            assert self.proc.stdout is not None
            self.proc.stdout.close()

    def describe_exit(self) -> str:
        code = self.proc.wait()
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            text = f"the unit's process (pid {self.pid}) was killed by {name}"
            if -code == signal.SIGKILL:
                text += " (out of memory, or killed from outside)"
            return text
        return f"the unit's process (pid {self.pid}) exited with code {code} while running the task"


class _WorkerState:
    """Per worker process: its cores and devices, what is handed out, its child processes, cancelled runs."""

    def __init__(self, total: dict[str, float], name: Any) -> None:
        self.lock = threading.Lock()
        slot = worker_slot(name)
        self.cpus = list(slot["cpus"]) if slot and slot.get("cpus") else usable_cpus()
        # Cores are handed out (and units pinned to them) only when they are this worker's own: given by misen's
        # layout, or as many as the worker declares (a batch job confined to its cores). Workers sharing a
        # machine's cores without a layout (a LocalCluster started by hand) leave their units on all of them.
        self.exclusive = bool(slot and slot.get("cpus")) or int(total.get(CPU, 0)) >= len(self.cpus)
        self.busy_cpus: dict[int, int] = dict.fromkeys(self.cpus, 0)
        self.gpus: dict[str, list[int]] = {}
        for rt, name in GPU_RESOURCES.items():
            count = int(total.get(name, 0))
            own = list(slot[rt]) if slot and rt in slot else None
            if own is None:
                visible = visible_devices(rt)
                own = visible[:count] if visible is not None else list(range(count))
            self.gpus[rt] = own[:count] if count else []
        self.free_gpus = {rt: list(v) for rt, v in self.gpus.items()}
        self.idle: list[_Child] = []
        self.running: dict[str, list[_Child]] = {}
        self.cancelled: set[str] = set()

    def take(self, ncpus: int, ngpus: int, runtime: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The least used of the worker's own cores (Dask's resources keep them free unless the worker's count
        oversubscribes its cores), or all its cores when it has none of its own; and free devices of ``runtime``
        (free whenever the worker's ``GPU`` count is right)."""
        with self.lock:
            if self.exclusive:
                order = sorted(self.cpus, key=lambda c: (self.busy_cpus[c], self.cpus.index(c)))
                cpus = tuple(sorted(order[: max(1, min(ncpus, len(order)))]))
            else:
                cpus = tuple(self.cpus)
            for c in cpus:
                self.busy_cpus[c] += 1
            free = self.free_gpus[runtime]
            if ngpus > len(free):
                for c in cpus:
                    self.busy_cpus[c] -= 1
                raise RuntimeError(
                    f"this Dask worker has {len(self.gpus[runtime])} {runtime} device(s) "
                    f"({format_indices(self.gpus[runtime]) or 'none'}), {len(free)} free, but the unit needs {ngpus}"
                )
            gpus = tuple(free[:ngpus])
            del free[:ngpus]
            return cpus, gpus

    def give_back(self, cpus: tuple[int, ...], gpus: tuple[int, ...], runtime: str) -> None:
        with self.lock:
            for c in cpus:
                self.busy_cpus[c] -= 1
            if gpus:
                self.free_gpus[runtime] = sorted({*self.free_gpus[runtime], *gpus})

    def child_for(self, key: tuple[Any, ...], env: dict[str, str]) -> _Child:
        with self.lock:
            for child in self.idle:
                if child.key == key and child.proc.poll() is None:
                    self.idle.remove(child)
                    return child
            old = self.idle[: max(0, len(self.idle) - _SPARE_CHILDREN + 1)]
            del self.idle[: len(old)]
        for child in old:
            child.close()
        return _Child(key, env)

    def done_with(self, child: _Child, reusable: bool) -> None:
        if reusable and child.proc.poll() is None:
            with self.lock:
                self.idle.append(child)
        else:
            child.close()


_state: _WorkerState | None = None
_state_lock = threading.Lock()


def _worker_state(worker: Any) -> _WorkerState:
    global _state
    with _state_lock:
        if _state is None:
            _state = _WorkerState(dict(worker.state.total_resources), worker.name)
        return _state


def cancel_run(run_id: str) -> int:
    """Stop this worker's units of run ``run_id`` (SIGTERM) and refuse its units not started yet.

    Called on every worker through ``Client.run`` when a run is interrupted; returns how many units it stopped.
    """
    state = _state
    if state is None:
        return 0
    with state.lock:
        state.cancelled.add(run_id)
        children = list(state.running.get(run_id, ()))
    for child in children:
        child.signal(signal.SIGTERM)
    return len(children)


def _wait_for_dead_attempt(request: dict[str, Any]) -> None:
    """A rerun after a lost worker: wait until the lock of this run's earlier attempt is released.

    The earlier attempt's process ends with its worker (the kernel drops its lock, or the file system's lease
    expires); a holder from another run is left alone: the unit then reports it as running elsewhere.
    """
    key = request["lock_key"]
    if key is None:
        return
    from misen.session import current_session

    ws = current_session().open_workspace(request["workspace"])
    deadline = time.time() + _STALE_LOCK_WAIT
    while time.time() < deadline:
        holder = ws.lock_holder(key)
        if holder is None or holder.run != request["run"]:
            return
        time.sleep(_TICK)


def run_unit(request: dict[str, Any], *deps: dict[str, Any]) -> dict[str, Any]:
    """The Dask task of one misen unit: run it in a bound child process; return its outcome as a dict.

    ``deps`` are the outcomes of the units it waits for (Dask dependencies); if one did not succeed the unit is
    skipped without running. An outcome with ``"record": True`` is one the child could not record itself (its
    process died, passed its time limit or was cancelled): the executor records it in the workspace.
    """
    for dep in deps:
        if dep.get("status") not in ("done", "cached"):
            return {"status": "skipped", "error": "a dependency did not succeed"}
    from distributed import get_worker

    worker = get_worker()
    state = _worker_state(worker)
    run_id = request["run"]
    if run_id in state.cancelled:
        return {"status": "cancelled", "error": "run interrupted"}
    _wait_for_dead_attempt(request)
    runtime = request["gpu_runtime"]
    cpus, gpus = state.take(request["cpus"], request["gpus"], runtime)
    node = socket.gethostname()
    where = f"dask worker {worker.name} ({worker.address}), cpus {format_indices(cpus)}"
    if gpus:
        where += f", {runtime} {format_indices(gpus)}"
    ncpus = min(request["cpus"], len(cpus))
    env = binding_env(ncpus, gpus, runtime, frozenset(request["keep"]))
    key = (request["snapshot"], ncpus, runtime if gpus else "", gpus)
    child = state.child_for(key, env)
    with state.lock:
        state.running.setdefault(run_id, []).append(child)
    reusable = False
    try:
        where = f"{where}, pid {child.pid}"

        def announce() -> None:
            with contextlib.suppress(Exception):
                worker.log_event(request["topic"], {"unit": request["unit"], "where": where})

        message = {
            "payload": request["payload"],
            "where": where,
            "job_id": next((os.environ[v] for v in _JOB_VARIABLES if os.environ.get(v)), None),
            "cpus": cpus,
            "gpus": gpus,
            "gpu_runtime": runtime,
            "memory": request["memory"],
            "env": env,
            "node": node,
        }
        start = time.time()
        outcome, reusable = _supervise(child, message, request, state, start, announce)
        outcome.setdefault("where", where)
        # The outcome travels as an event too: the executor reads it there, without fetching the task's value.
        with contextlib.suppress(Exception):
            worker.log_event(request["topic"], {"unit": request["unit"], "outcome": outcome})
        return outcome
    finally:
        with state.lock:
            running = state.running.get(run_id, [])
            if child in running:
                running.remove(child)
            if not running:
                state.running.pop(run_id, None)
        state.done_with(child, reusable)
        state.give_back(cpus, gpus, runtime)


def _supervise(
    child: _Child,
    message: dict[str, Any],
    request: dict[str, Any],
    state: _WorkerState,
    start: float,
    announce: Callable[[], None],
) -> tuple[dict[str, Any], bool]:
    """Send the unit to ``child`` and wait for its outcome, enforcing the time limit and run cancellation.

    ``announce`` (the unit's start event) is called once the unit has run for a tick without ending: a quick
    unit is reported by its end event alone, which halves the messages of a sweep of cheap tasks.
    """
    limit = request["time_limit"]
    deadline = start + limit if limit is not None else None
    grace = request["grace"]
    stopping: str | None = None
    term_sent = 0.0
    killed = False
    reported: dict[str, Any] | None = None
    ended = not child.send(message)
    announced = False
    while not ended:
        readable = select.select([child.fd], [], [], _TICK)[0]
        if not readable and not announced:
            announced = True
            announce()
        if readable:
            got, ended = child.read()
            if got is not None:
                if stopping is None:
                    return got, True
                reported = got
        if not ended and child.proc.poll() is not None:
            # A process the task started may hold the pipe open after the child died: read what is left.
            while select.select([child.fd], [], [], 0)[0]:
                got, ended = child.read()
                if got is not None:
                    reported = got
                if ended:
                    break
            if reported is not None and stopping is None:
                return reported, False
            ended = True
        now = time.time()
        if stopping is None and request["run"] in state.cancelled:
            stopping, term_sent = "cancelled", now
            child.signal(signal.SIGTERM)
        elif stopping is None and deadline is not None and now >= deadline:
            stopping, term_sent = "timeout", now
            child.signal(signal.SIGTERM)
        elif stopping is not None and not killed and now >= term_sent + grace:
            killed = True
            child.signal(signal.SIGKILL)
    child.signal(signal.SIGKILL)  # what the task started goes with it
    duration = time.time() - start
    if reported is not None and reported.get("status") in ("done", "cached"):
        return reported, False
    if stopping == "timeout":
        error = f"passed its time limit of {limit / 60:g} min and was stopped (SIGTERM"
        error += f", then SIGKILL after {grace:g}s)" if killed else ")"
        return {"status": "timeout", "error": error, "duration": duration, "record": True}, False
    if stopping == "cancelled":
        return {"status": "cancelled", "error": "run interrupted", "duration": duration, "record": True}, False
    return {"status": "failed", "error": child.describe_exit(), "duration": duration, "record": True}, False

