"""What a worker owns: every process its task started (however detached), and the task's memory request.

A worker process makes itself a *child subreaper* (Linux ``prctl(PR_SET_CHILD_SUBREAPER)``): a process its task
starts stays in the worker's process tree even after double-forking or calling ``setsid``, because an orphan is
re-parented to the nearest subreaper instead of to init. When the task ends, every descendant is killed; when
the executor must kill a worker, it kills the worker's whole tree first.

Memory requests (``resources={"memory": GiB}`` set explicitly) are enforced with ``RLIMIT_DATA`` on the worker
for the unit's duration (inherited by the processes the task starts): an allocation past the request fails, and
the unit ends as "Task(...) exceeded its memory request of 1 GiB". cgroups are not used.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator

__all__ = ["become_subreaper", "descendants", "kill_descendants", "memory_limit"]

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants; ``False`` where the platform cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return int(ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return out


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children first), from ``/proc``; empty where there is no ``/proc``."""
    found: list[int] = []
    stack = [pid]
    seen = {pid}
    while stack:
        for child in _children(stack.pop()):
            if child not in seen:
                seen.add(child)
                found.append(child)
                stack.append(child)
    return found


def kill_descendants(pid: int | None = None, *, patience: float = 2.0) -> int:
    """SIGKILL every descendant of ``pid`` (default: this process) until none is left; returns how many.

    Run from the process itself, it also reaps them (its orphans are re-parented to it as a subreaper). A process
    with no child at all (one ``waitpid``, the usual case after a unit) has no descendant to look for: an orphan of
    its tree would have become its child, or, where it is no subreaper, is out of the tree's reach anyway.
    """
    if pid is None:
        try:
            os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 0
    root = os.getpid() if pid is None else pid
    killed: set[int] = set()
    deadline = time.monotonic() + patience
    while True:
        found = descendants(root)
        if root == os.getpid():
            _reap()
        live = [p for p in found if not _is_zombie(p)]
        if not live or time.monotonic() > deadline:
            return len(killed)
        for p in live:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, signal.SIGKILL)
                killed.add(p)
        time.sleep(0.005)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


@contextlib.contextmanager
def memory_limit(gib: float | None) -> Iterator[None]:
    """Hold this process (and what it starts) to ``gib`` GiB of data memory while the block runs."""
    if not gib:
        yield
        return
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        limit = int(gib * 2**30)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    except (ImportError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
