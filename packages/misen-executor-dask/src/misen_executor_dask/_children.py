"""The unit processes of one Dask worker, and the worker's share of CPUs and GPUs.

A Dask worker is a long-lived process shared by many units (and, on a running cluster, by many runs): it hands
each unit to a child process (`misen_executor_dask._child`) bound to the cores and devices it picked for the unit,
and keeps idle children for later units of the same shape (snapshot, CPU count, devices).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import subprocess
import threading
from typing import Any

from misen_executor_local.unit_process import HEADER, describe_exit, start

from misen_executor_dask._binding import CPU, GPU_RESOURCES, format_indices, usable_cpus, visible_devices

__all__ = ["LAYOUT_VARIABLE", "Child", "WorkerState", "current_state", "worker_slot", "worker_state"]

#: Set by misen on the workers of a cluster it starts on this machine: a JSON list of slots, one per worker
#: (``{"cpus": [0, 1], "cuda": [0]}``); worker ``n`` owns slot ``n % len(slots)``. Without it a worker hands out
#: the cores its process may run on and the first devices of its GPU resource count.
LAYOUT_VARIABLE = "MISEN_DASK_LAYOUT"
#: Idle child processes a worker keeps for later units, beyond which the oldest is ended.
_SPARE_CHILDREN = 4


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


class Child:
    """One child process, bound for its whole life to a thread count and a device set."""

    def __init__(self, key: tuple[Any, ...], env: dict[str, str]) -> None:
        self.key = key
        self.proc = start("misen_executor_dask._child", env, "MISEN_DASK_PARENT")
        self.pid = self.proc.pid
        assert self.proc.stdout is not None
        self.fd = self.proc.stdout.fileno()
        self.buffer = bytearray()
        self.ready = False

    def wait_ready(self) -> None:
        """Wait until the fresh child has imported misen and reads requests (its first message), or has died:
        a unit's time, and its time limit, start when its process is ready."""
        while not self.ready:
            if select.select([self.fd], [], [], 0.1)[0]:
                got, ended = self.read()
                if got is not None or ended:
                    self.ready = True
            elif self.proc.poll() is not None:
                self.ready = True

    @staticmethod
    def pack(request: dict[str, Any]) -> bytes:
        """A request as `send` takes it (its size decides whether it may wait in the pipe behind another)."""
        return pickle.dumps(request, protocol=5)

    def send(self, data: bytes) -> bool:
        """Write a packed request to the child's input; ``False`` if the child is gone."""
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(HEADER.pack(len(data)) + data)
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def read(self) -> tuple[dict[str, Any] | None, bool]:
        """(the outcome if it is complete, whether the output ended); call when `buffered` holds none and the
        pipe is readable."""
        try:
            chunk = os.read(self.fd, 1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            return None, True
        self.buffer += chunk
        return self.buffered(), False

    def buffered(self) -> dict[str, Any] | None:
        """The next message if it was read already (a unit queued behind another can end right after it, and
        both outcomes come in one read)."""
        if len(self.buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self.buffer)
            if len(self.buffer) >= HEADER.size + size:
                message = pickle.loads(bytes(self.buffer[HEADER.size : HEADER.size + size]))
                del self.buffer[: HEADER.size + size]
                return message  # type: ignore[no-any-return]
        return None

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
        return describe_exit("the unit's process", self.pid, self.proc.wait())


class WorkerState:
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
        self.idle: list[Child] = []
        self.running: dict[str, list[Child]] = {}
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

    def child_for(self, key: tuple[Any, ...], env: dict[str, str]) -> Child:
        with self.lock:
            for child in self.idle:
                if child.key == key and child.proc.poll() is None:
                    self.idle.remove(child)
                    return child
            old = self.idle[: max(0, len(self.idle) - _SPARE_CHILDREN + 1)]
            del self.idle[: len(old)]
        for child in old:
            child.close()
        return Child(key, env)

    def done_with(self, child: Child, reusable: bool) -> None:
        if reusable and child.proc.poll() is None:
            with self.lock:
                self.idle.append(child)
        else:
            child.close()


_state: WorkerState | None = None
_state_lock = threading.Lock()


def worker_state(worker: Any) -> WorkerState:
    global _state
    with _state_lock:
        if _state is None:
            _state = WorkerState(dict(worker.state.total_resources), worker.name)
        return _state


def current_state() -> WorkerState | None:
    """This worker's state, or ``None`` if it has run no unit yet."""
    return _state
