"""Per-task locks of the disk workspace: an exclusive ``flock`` on ``locks/<key[:2]>/<key>.lock``, whose content is
the holder's note.

The flock is the truth: the kernel (or the NFS server, when its lease expires) drops it when the holder dies, so
a killed process never leaves a lock behind. The note (a small JSON object written into the lock file once the
flock is held, and truncated away on release) only names the holder in error messages and for
`task.is_running()`; a note whose flock is free is stale and ignored.

This is a thin wrapper over ``fcntl.flock`` (one ``open``, one ``flock``, one ``fstat``/``stat`` pair and one
write per lock) rather than `filelock`, which costs several times as much per acquisition. Like `filelock`, it
re-checks after locking that the path still names the inode it locked: a lock file unlinked by `misen gc` while
another process waited on it is opened again, so two processes never hold "the same" lock on two inodes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator

from misen.errors import MisenError, TaskLockedError
from misen.workspace import LockHolder

from misen_workspace_disk._fs import HOST, dump_json, pid_alive, process_started_after, storage_error

__all__ = ["hold_lock", "probe_holder", "remove_idle_lock"]

# A probe by `probe_holder` holds a shared flock for a few microseconds; an acquirer retries this long so such a
# probe never makes it fail.
PROBE_GRACE = 0.02
#: Seconds between attempts while waiting for a busy lock.
POLL = 0.005
_BUSY = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES}
_NO_LOCKS = {errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK}


#: Descriptors of the locks this process holds. A child made by ``fork`` (a task's multiprocessing pool, say) gets
#: copies that would keep each flock held for as long as it lives; it closes them at once instead, as `filelock`
#: does, so a lock is released when its holder lets go, whatever the holder forked.
_HELD: set[int] = set()


def _close_held_in_child() -> None:
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held_in_child)


def lock_path(locks_dir: str, key: str) -> str:
    """The lock file of ``key``."""
    return f"{locks_dir}/{key[:2]}/{key}.lock"


def _note(fd: int) -> LockHolder | None:
    """The holder note in an open lock file, or ``None`` (empty, half-written or not a note)."""
    try:
        data = os.pread(fd, 65536, 0)
        value = json.loads(data) if data else None
    except (OSError, ValueError):
        return None
    if not isinstance(value, dict):
        return None
    try:
        return LockHolder.from_dict(value)
    except (TypeError, ValueError):
        return None


def _read_note(path: str) -> LockHolder | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return _note(fd)
    finally:
        os.close(fd)


def _open(path: str) -> int:
    # The file mode follows the umask: a workspace shared by a group needs a group-writable umask anyway.
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except FileNotFoundError:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, path, "create the lock directory") from None
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)


def _same_file(fd: int, path: str) -> bool:
    try:
        mine, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (mine.st_ino, mine.st_dev) == (there.st_ino, there.st_dev)


def _try_lock(fd: int, path: str) -> bool | None:
    """Take the exclusive flock of open lock file ``fd`` without waiting: ``True`` if taken and ``path`` still
    names that file, ``False`` if somebody holds it, ``None`` if the file was unlinked or replaced meanwhile."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in _NO_LOCKS:
            raise MisenError(
                f"disk workspace: the file system holding {path} does not support file locks (flock); mount "
                "it with lock support (Lustre: -o flock) or set [workspace] directory to a file system that has it"
            ) from None
        if exc.errno not in _BUSY:
            raise storage_error(exc, path, "take the task lock") from None
        return False
    return True if _same_file(fd, path) else None


def _acquire(path: str, timeout: float) -> int | None:
    """An open descriptor of ``path`` holding its exclusive flock, or ``None`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = _open(path)
        except OSError as exc:
            raise storage_error(exc, path, "take the task lock") from None
        try:
            taken = _try_lock(fd, path)
        except BaseException:
            os.close(fd)
            raise
        if taken:
            return fd
        os.close(fd)
        if taken is None:
            continue  # unlinked (or replaced) between our open and our flock: lock the file that is there now
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL)


@contextlib.contextmanager
def hold_lock(locks_dir: str, key: str, holder: LockHolder, *, timeout: float, fsync: bool) -> Iterator[None]:
    """Hold the exclusive lock ``key`` for the ``with`` block, or raise `TaskLockedError` naming the holder."""
    path = lock_path(locks_dir, key)
    fd = _acquire(path, max(timeout, PROBE_GRACE))
    other: LockHolder | None = None
    tries = 0
    while fd is None:
        other = _read_note(path)
        if other is not None or tries == 5:
            break
        # No note: the holder has just taken the lock and not written it yet, or has just let go (it clears
        # its note before it releases the flock). Look again, and take the lock if it is free now.
        tries += 1
        fd = _acquire(path, 0.01)
    if fd is None:
        who = other.describe() if other is not None else "another process (it has not said who yet)"
        what = f"task {other.task}" if other is not None and other.task else f"task {key}"
        raise TaskLockedError(
            f"{what} is already running in this workspace (lock held by {who}); it was not started twice — "
            "wait for it to finish, and a later run finds its result cached",
            other,
        )
    _HELD.add(fd)
    try:
        try:
            data = dump_json(holder.as_dict())
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            if fsync:
                os.fsync(fd)
        except OSError as exc:
            raise storage_error(exc, path, "write the lock holder") from None
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # no stale note: a probe then answers "free" without taking a flock
    finally:
        _HELD.discard(fd)
        os.close(fd)  # closing the only descriptor releases the flock


def probe_holder(locks_dir: str, key: str) -> LockHolder | None:
    """The live holder of lock ``key``, or ``None``. Writes nothing.

    Checks, cheapest first: an empty (or missing) lock file means no holder; a note from a dead process on this
    host means no holder; otherwise a non-blocking shared flock tells whether anybody holds the lock exclusively.
    """
    try:
        fd = os.open(lock_path(locks_dir, key), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        holder = _note(fd)
        if holder is None:
            return None
        if holder.host == HOST and (not pid_alive(holder.pid) or process_started_after(holder.pid, holder.since)):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            return holder if exc.errno in _BUSY else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def remove_idle_lock(path: str) -> None:
    """Unlink lock file ``path`` if nobody holds it (an acquirer that opened it before re-opens the new one)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return
        if _same_file(fd, path):
            with contextlib.suppress(OSError):
                os.unlink(path)
        with contextlib.suppress(OSError):  # the note file of workspaces written before notes moved into the lock
            os.unlink(path[: -len(".lock")] + ".holder.json")
    finally:
        os.close(fd)
