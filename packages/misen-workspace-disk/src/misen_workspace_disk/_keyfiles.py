"""Per-key lock files of the disk workspace, ``locks/<key[:2]>/<key>.lock``: an exclusive ``flock`` whose file
holds the holder's note (truncated on release).

They are what the workspace used before slots (`._locks`), what it uses where byte-range locks are refused, and
what a key takes when another key holds its slot. A thin wrapper over ``fcntl.flock`` (one ``open``, one
``flock``, one ``fstat``/``stat`` pair and one write per lock) rather than `filelock`, which costs several times as
much. Like `filelock`, it re-checks after locking that the path still names the inode it locked.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os

from misen.errors import MisenError
from misen.workspace import LockHolder

from misen_workspace_disk._fs import storage_error

__all__ = ["file_held", "key_path", "open_create", "read_file_note", "remove_idle_file", "same_file", "try_lock"]

_BUSY = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES}
_NO_LOCKS = {errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK}


def key_path(locks_dir: str, key: str) -> str:
    """The per-key lock file of ``key``."""
    return f"{locks_dir}/{key[:2]}/{key}.lock"


def open_create(path: str, action: str) -> int:
    """``path`` opened for reading and writing, created (with its folder) if missing."""
    # The file mode follows the umask: a workspace shared by a group needs a group-writable umask anyway.
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
    try:
        try:
            return os.open(path, flags, 0o666)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            return os.open(path, flags, 0o666)
    except OSError as exc:
        raise storage_error(exc, path, action) from None


def read_file_note(where: int | str) -> LockHolder | None:
    """The holder note in a lock file (an open descriptor or a path), or ``None`` (missing, empty, half-written
    or not a note)."""
    try:
        fd = where if isinstance(where, int) else os.open(where, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.pread(fd, 65536, 0)
        value = json.loads(data) if data else None
    except (OSError, ValueError):
        return None
    finally:
        if not isinstance(where, int):
            os.close(fd)
    if not isinstance(value, dict):
        return None
    try:
        return LockHolder.from_dict(value)
    except (TypeError, ValueError):
        return None


def same_file(fd: int, path: str) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not unlinked or replaced since it was opened)."""
    try:
        mine, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (mine.st_ino, mine.st_dev) == (there.st_ino, there.st_dev)


def try_lock(fd: int, path: str) -> bool | None:
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
    if same_file(fd, path):
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return None


def file_held(path: str) -> tuple[bool, LockHolder | None]:
    """Whether somebody flocks lock file ``path`` (missing: no), and its note. Writes nothing (a shared flock
    is held for a few microseconds)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False, None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            return (True, read_file_note(fd)) if exc.errno in _BUSY else (False, None)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False, None
    finally:
        os.close(fd)


def remove_idle_file(path: str) -> None:
    """Unlink per-key lock file ``path`` if nobody holds it (an acquirer that opened it before re-opens the new
    one)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return
        if same_file(fd, path):
            with contextlib.suppress(OSError):
                os.unlink(path)
        with contextlib.suppress(OSError):  # the note file of workspaces written before notes moved into the lock
            os.unlink(path[: -len(".lock")] + ".holder.json")
    finally:
        os.close(fd)
