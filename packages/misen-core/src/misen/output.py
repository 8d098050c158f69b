"""Where a unit's output goes while it runs: the whole process's file descriptors (a worker that runs one unit
at a time), or only what the unit's own thread prints (units side by side on threads of one process); and the
project's environment applied around a run. `misen.worker` uses these; executors reach them as
``misen.worker.thread_output`` and ``misen.worker.scoped_environment`` (plugins.md)."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from misen.tasklog import TaskLog

__all__ = ["add_flusher", "capture_output", "remove_flusher", "routers_installed", "scoped_environment", "thread_output"]


@contextlib.contextmanager
def scoped_environment(env: dict[str, str]) -> Iterator[None]:
    """Apply ``env`` to ``os.environ`` for the block, then restore what was there (an executor that runs units
    on threads of this process applies the plan's environment once around the whole run)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _ThreadRouter(io.TextIOBase):
    """Stands in for ``sys.stdout``/``sys.stderr`` while units run on threads: a write from a thread that runs
    a unit goes to that unit's log, anything else to the stream that was there before."""

    def __init__(self, original: TextIO, local: threading.local) -> None:
        self.original = original
        self.local = local

    def _target(self) -> TextIO:
        return getattr(self.local, "log", None) or self.original

    def write(self, s: str) -> int:
        log = getattr(self.local, "log", None)
        if log is None:
            return self.original.write(s)
        if getattr(self.local, "tee", False):
            with contextlib.suppress(Exception):
                # Progress lines written before the task's output come out first; they are not the task's
                # output, so while they are written this thread prints where it would outside a unit.
                self.local.log = None
                try:
                    _routing().flush_waiting()
                finally:
                    self.local.log = log
                self.original.write(s)
        return log.write(s)

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self._target().flush()
        if getattr(self.local, "tee", False):
            with contextlib.suppress(Exception):
                self.original.flush()

    def isatty(self) -> bool:
        return False if getattr(self.local, "log", None) else self.original.isatty()

    def fileno(self) -> int:
        return self.original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")


class _Routing:
    """The routers installed on ``sys.stdout``/``sys.stderr`` for as long as any unit runs on a thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.local = threading.local()
        self.saved: tuple[Any, Any] | None = None
        #: Flushes of progress lines that wait (`misen.reporting.PlainReporter`): asked before a task's output
        #: is shown where it goes.
        self.flushers: list[Callable[[], None]] = []

    def flush_waiting(self) -> None:
        for flush in list(self.flushers):
            flush()

    def install(self) -> None:
        with self.lock:
            if self.users == 0:
                self.saved = (sys.stdout, sys.stderr)
                sys.stdout = _ThreadRouter(sys.stdout, self.local)
                sys.stderr = _ThreadRouter(sys.stderr, self.local)
            self.users += 1

    def uninstall(self) -> None:
        with self.lock:
            self.users -= 1
            if self.users == 0 and self.saved is not None:
                sys.stdout, sys.stderr = self.saved
                self.saved = None

    @contextlib.contextmanager
    def capture(self, log: TextIO, tee: bool) -> Iterator[None]:
        self.install()
        self.local.log, self.local.tee = log, tee
        try:
            yield
        finally:
            self.local.log, self.local.tee = None, False
            self.uninstall()


class _ThreadCapture:
    """`capture_output`'s ``"thread"``/``"python"`` modes, as a plain context manager (it is entered for every
    unit)."""

    __slots__ = ("log", "routing", "tee")

    def __init__(self, log: TaskLog, tee: bool) -> None:
        self.routing, self.log, self.tee = _routing(), log, tee

    def __enter__(self) -> TaskLog:
        self.routing.install()
        local = self.routing.local
        local.log, local.tee = self.log, self.tee
        return self.log

    def __exit__(self, *exc: object) -> None:
        local = self.routing.local
        local.log, local.tee = None, False
        self.routing.uninstall()


@functools.cache
def _routing() -> _Routing:
    return _Routing()


@contextlib.contextmanager
def thread_output(log: TextIO, *, tee: bool = False) -> Iterator[None]:
    """Send what the current thread prints (``print``, ``sys.stdout``/``sys.stderr`` writes) to ``log`` for the
    block (``tee``: and still to where it went before); other threads keep printing where they did. Output
    written to file descriptors 1 and 2 directly (subprocesses, C code) is not captured this way."""
    with _routing().capture(log, tee):
        yield


def add_flusher(flush: Callable[[], None]) -> None:
    """Have ``flush`` called before a task's output is shown on this process's streams (a reporter that holds
    lines back for a moment, so that they still come out before what a later task prints)."""
    with _routing().lock:
        _routing().flushers.append(flush)


def remove_flusher(flush: Callable[[], None]) -> None:
    """Undo `add_flusher`."""
    with _routing().lock:
        with contextlib.suppress(ValueError):
            _routing().flushers.remove(flush)


@contextlib.contextmanager
def routers_installed() -> Iterator[None]:
    """Keep the thread routers of `thread_output` on ``sys.stdout``/``sys.stderr`` for the block, so that units
    run one after another in this process do not install and remove them each (an executor wraps its run in it;
    what threads print outside a unit still goes where it went before)."""
    routing = _routing()
    routing.install()
    try:
        yield
    finally:
        routing.uninstall()


def capture_output(log: TaskLog, mode: str) -> contextlib.AbstractContextManager[TaskLog]:
    """Send a unit's output to ``log``.

    ``mode``: ``"fd"`` points file descriptors 1 and 2 of the whole process at the log's file (subprocesses
    included; only for a process that runs one unit at a time, such as a local worker or a SLURM job; the log must
    be on disk, `TaskLog.promote`); ``"thread"`` sends what the calling thread prints to the log (`thread_output`;
    safe when units run on several threads); ``"python"`` is ``"thread"`` that still shows the output where it went
    before (the in-process executor); ``"none"`` captures nothing.
    """
    if mode in ("thread", "python"):
        return _ThreadCapture(log, tee=mode == "python")
    if mode == "fd":
        return _fd_capture(log)
    return contextlib.nullcontext(log)


@contextlib.contextmanager
def _fd_capture(log: TaskLog) -> Iterator[TaskLog]:
    """Point file descriptors 1 and 2 at the log's file for the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        yield log
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
