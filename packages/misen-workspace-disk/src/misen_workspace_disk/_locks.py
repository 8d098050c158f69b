"""Per-task locks of the disk workspace: a `filelock` flock on ``<key>.lock`` plus a ``<key>.holder.json`` note.

The flock is the truth: the kernel (or the NFS server, when its lease expires) drops it when the holder dies, so
a killed process never leaves a lock behind. The holder note only names the holder in error messages and for
`task.is_running()`; a note whose flock is free is stale and ignored.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator

import filelock
from misen.errors import MisenError, TaskLockedError
from misen.workspace import LockHolder

from misen_workspace_disk._fs import (
    HOST,
    atomic_write_bytes,
    dump_json,
    pid_alive,
    process_started_after,
    read_json,
    storage_error,
)

__all__ = ["hold_lock", "probe_holder"]

# A probe by `probe_holder` holds a shared flock for a few microseconds; an acquirer retries this long so such a
# probe never makes it fail.
PROBE_GRACE = 0.02
_BUSY = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES}


def _paths(locks_dir: str, key: str) -> tuple[str, str]:
    base = f"{locks_dir}/{key[:2]}/{key}"
    return base + ".lock", base + ".holder.json"


def _read_holder(path: str) -> LockHolder | None:
    try:
        data = read_json(path)
    except MisenError:
        return None
    if data is None:
        return None
    try:
        return LockHolder.from_dict(data)
    except (TypeError, ValueError):
        return None


_MADE: set[str] = set()  # lock shard directories known to exist in this process


@contextlib.contextmanager
def hold_lock(locks_dir: str, key: str, holder: LockHolder, *, timeout: float, fsync: bool) -> Iterator[None]:
    """Hold the exclusive lock ``key`` for the ``with`` block, or raise `TaskLockedError` naming the holder."""
    lock_path, holder_path = _paths(locks_dir, key)
    shard = os.path.dirname(lock_path)
    if shard not in _MADE:
        try:
            os.makedirs(shard, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, lock_path, "create the lock directory") from None
        _MADE.add(shard)
    # The file mode follows the umask: a workspace shared by a group needs a group-writable umask anyway.
    lock = filelock.UnixFileLock(
        lock_path, thread_local=False, fallback_to_soft=False, preserve_lock_file=True
    )
    try:
        lock.acquire(timeout=max(timeout, PROBE_GRACE), poll_interval=0.01)
    except filelock.Timeout:
        other = _read_holder(holder_path)
        for _ in range(5):  # the holder writes its note just after taking the lock
            if other is not None:
                break
            time.sleep(0.01)
            other = _read_holder(holder_path)
        who = other.describe() if other is not None else "another process (it has not said who yet)"
        what = f"task {other.task}" if other is not None and other.task else f"task {key}"
        raise TaskLockedError(
            f"{what} is already running in this workspace (lock held by {who}); it was not started twice — "
            "wait for it to finish, and a later run finds its result cached",
            other,
        ) from None
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK):
            raise MisenError(
                f"disk workspace: the file system holding {lock_path} does not support file locks (flock); mount "
                "it with lock support (Lustre: -o flock) or set [workspace] directory to a file system that has it"
            ) from None
        raise storage_error(exc, lock_path, "take the task lock") from None
    try:
        atomic_write_bytes(
            holder_path, dump_json(holder.as_dict()), fsync=fsync, action="write the lock holder"
        )
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(holder_path)
    finally:
        lock.release()


def probe_holder(locks_dir: str, key: str) -> LockHolder | None:
    """The live holder of lock ``key``, or ``None``. Writes nothing.

    Checks, cheapest first: no holder note means no holder; a note from a dead process on this host means no
    holder; otherwise a non-blocking shared flock tells whether anybody holds the lock exclusively.
    """
    lock_path, holder_path = _paths(locks_dir, key)
    holder = _read_holder(holder_path)
    if holder is None:
        return None
    if holder.host == HOST and (not pid_alive(holder.pid) or process_started_after(holder.pid, holder.since)):
        return None
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in _BUSY:
                return holder
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
