"""The executor's side of a worker process: starting it, sending it units, reading its outcomes, stopping it."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any

from misen_executor_local._machine import Allocation
from misen_executor_local._worker import HEADER, PARENT_VARIABLE
from misen_executor_local.unit_process import describe_exit, start

__all__ = ["Busy", "WorkerProcess"]


class Busy:
    """The batch of units a worker is running (in order, on one set of cores and devices), and how it is being
    stopped, if it is."""

    def __init__(self, units: list[Any], alloc: Allocation, where: str, limits: list[float | None]) -> None:
        self.units = units
        #: The first unit of the batch (the one running when it starts).
        self.unit = units[0]
        self.alloc = alloc
        self.where = where
        self.start = time.time()
        #: When the batch's time limit runs out: the sum of its units' limits (``None``: a unit has no limit).
        self.deadline = None if None in limits else self.start + sum(x for x in limits if x is not None)
        #: Why the worker was sent SIGTERM (``"timeout"``, ``"cancelled"``), and when.
        self.stopping: str | None = None
        self.term_sent = 0.0
        self.killed = False
        #: Outcomes the worker reported while being stopped, by unit id.
        self.reported: dict[str, dict[str, Any]] = {}


class WorkerProcess:
    """One worker process, bound to the thread counts and devices of its ``key`` for its whole life."""

    def __init__(self, index: int, key: tuple[Any, ...], env: dict[str, str], spool: str | None = None) -> None:
        self.index = index
        self.key = key
        #: The worker's spool file (`misen.tasklog.Spool`), if it has one.
        self.spool = spool
        self.proc = start("misen_executor_local._worker", env, PARENT_VARIABLE)
        self.pid = self.proc.pid
        assert self.proc.stdout is not None and self.proc.stdin is not None
        #: Bytes that fit in the request pipe: what may be queued behind a running batch without blocking.
        self.pipe_size = _widen_pipe(self.proc.stdin.fileno())
        self.fd = self.proc.stdout.fileno()
        self._buffer = bytearray()
        self.busy: Busy | None = None
        #: Batches sent to run right after ``busy`` (same shape), in order, with their sizes; not started yet.
        self.queued: list[tuple[list[Any], int]] = []
        self.eof = False

    def drop_spool(self) -> None:
        """Remove the worker's spool file (the worker is gone; a log that mattered is a file of its own)."""
        if self.spool is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.spool)

    def send(self, message: bytes) -> bool:
        """Send an encoded request; ``False`` if the worker is gone."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(message)
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def read_available(self) -> list[Any]:
        """Messages that arrived (call when the fd is readable); sets `eof` when the worker closed its end."""
        import pickle

        try:
            chunk = os.read(self.fd, 1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            self.eof = True
            return []
        self._buffer += chunk
        out = []
        while len(self._buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self._buffer)
            if len(self._buffer) < HEADER.size + size:
                break
            out.append(pickle.loads(bytes(self._buffer[HEADER.size : HEADER.size + size])))
            del self._buffer[: HEADER.size + size]
        return out

    def signal(self, sig: int) -> None:
        """Signal the worker's process group: the worker and the processes its task started.

        SIGKILL first kills the worker's whole process tree (the worker is a subreaper, so even a detached
        process its task started is in it), which leaves nothing behind once the worker is gone.
        """
        if sig == signal.SIGKILL and self.proc.returncode is None:
            from misen_executor_local._owned import kill_descendants

            with contextlib.suppress(Exception):
                kill_descendants(self.pid, patience=0.5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def close_input(self) -> None:
        """Ask the worker to exit once idle (end of input)."""
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.close()

    def poll(self) -> int | None:
        return self.proc.poll()

    def reap(self) -> int:
        """Wait for the worker to exit (it must be exiting) and release its pipes."""
        code = self.proc.wait()
        with contextlib.suppress(Exception):
            assert self.proc.stdout is not None
            self.proc.stdout.close()
        self.close_input()
        return code

    def describe_exit(self, code: int) -> str:
        return describe_exit("the worker process", self.pid, code)


def _widen_pipe(fd: int) -> int:
    """Ask for a 1 MiB pipe (Linux; the default is 64 KiB) and return the size it has."""
    import fcntl

    set_size, get_size = getattr(fcntl, "F_SETPIPE_SZ", None), getattr(fcntl, "F_GETPIPE_SZ", None)
    if set_size is None or get_size is None:
        return 1 << 16
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, set_size, 1 << 20)
    try:
        return int(fcntl.fcntl(fd, get_size))
    except OSError:
        return 1 << 16


def stop_all(workers: list[WorkerProcess], grace: float) -> None:
    """Terminate every worker (SIGTERM, then SIGKILL after ``grace`` seconds) and reap them.

    A second Ctrl-C while waiting skips the rest of the grace period.
    """
    for w in workers:
        w.signal(signal.SIGTERM)
        w.close_input()
    deadline = time.time() + grace
    try:
        while time.time() < deadline and any(w.poll() is None for w in workers):
            time.sleep(0.02)
    except KeyboardInterrupt:
        pass
    for w in workers:
        if w.poll() is None:
            w.signal(signal.SIGKILL)
    for w in workers:
        w.reap()
        w.signal(signal.SIGKILL)  # what the task started and that outlived SIGTERM
