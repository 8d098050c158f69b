"""File-system helpers of the disk workspace: atomic small writes, fast reads, fsync, clear storage errors."""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import re
import secrets
import shutil
import socket
from typing import Any

from misen.errors import MisenError
from misen.workspace import pid_alive, process_id, process_started_after

__all__ = [
    "WorkspaceStorageError",
    "atomic_write_bytes",
    "atomic_write_linked",
    "check_name",
    "fsync_dir",
    "names",
    "pid_alive",
    "process_started_after",
    "read_json",
    "remove_tree",
    "storage_error",
    "subdirs",
    "tree_size",
]

HOST = socket.gethostname()

# Names that become path components: hashes, record kinds, attempt names. No separators, no "..", no leading dot
# (dot files are this workspace's own temporaries).
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,199}")

_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}
#: What ``link`` fails with on file systems without hard links (some FUSE and SMB mounts): write copies instead.
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK, errno.EXDEV}


class WorkspaceStorageError(MisenError, OSError):
    """The workspace could not read or write a file: permission denied, read-only or full disk, I/O error.

    It is an `OSError` too (``errno`` and ``filename`` are set), so code that handles OS errors still does.
    """

    def __init__(self, message: str, code: int | None = None, path: str | None = None) -> None:
        OSError.__init__(self, code or 0, message, path)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> Any:
        return (type(self), (self.message, self.errno, self.filename))


def storage_error(exc: OSError, path: str | os.PathLike[str], action: str) -> WorkspaceStorageError:
    """One clear message for an `OSError` met while ``action`` (``"write the record"``) at ``path``."""
    if isinstance(exc, WorkspaceStorageError):
        return exc
    where = str(exc.filename or path)
    code = exc.errno
    if code in _FULL:
        why = f"{(exc.strerror or 'no space left on device').lower()} (the disk is full or a size/quota limit was reached)"
        hint = "free some space (`misen gc` lists results no record refers to) or move the workspace"
    elif code in _DENIED:
        why = "permission denied" if code != errno.EROFS else "the file system is read-only"
        hint = "fix the permissions or set [workspace] directory in .misen.toml to a writable place"
    else:
        why = exc.strerror or type(exc).__name__
        hint = "check the file system"
    return WorkspaceStorageError(f"disk workspace: cannot {action} at {where}: {why}; {hint}", code, where)


def check_name(name: str, what: str) -> str:
    """Return ``name`` if it is safe as one path component, else raise `MisenError` naming ``what``."""
    if type(name) is not str or not (
        (name.isascii() and name.isalnum() and len(name) <= 200) or _NAME.fullmatch(name) is not None
    ):
        raise MisenError(
            f"disk workspace: {what} {name!r} is not a valid name (letters, digits, '_', '-', '.')"
        )
    return name


def is_name(name: object) -> bool:
    """`check_name` as a test. Hex digests, the common case, pass the cheap string checks without a regex."""
    return type(name) is str and (
        (name.isascii() and name.isalnum() and len(name) <= 200) or _NAME.fullmatch(name) is not None
    )


_TOKENS = itertools.count()


def token() -> str:
    """A name part unique on this machine: the pid and a counter (re-seeded by random after a fork)."""
    pid = process_id()
    if _TOKEN_PID[0] != pid:
        _TOKEN_PID[:] = [pid, secrets.randbits(24)]
    return f"{pid:x}.{_TOKEN_PID[1]:06x}.{next(_TOKENS):x}"


_TOKEN_PID: list[int] = [0, 0]


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename or creation inside ``path`` durable (best effort where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str, data: bytes, *, fsync: bool, action: str, mode: int = 0o666) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename.

    A reader sees the old content or the new, never a mix; on any error the temporary file is removed and a
    `WorkspaceStorageError` naming ``path`` is raised. Missing parent directories are created.
    """
    directory, _, base = path.rpartition("/")
    tmp = f"{directory}/.{base}.{token()}.tmp"
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileNotFoundError:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise storage_error(exc, path, action) from None
    try:
        _write_all(fd, data, fsync=fsync)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise storage_error(exc, path, action) from None
        raise


def _write_all(fd: int, data: bytes, *, fsync: bool) -> None:
    """Write all of ``data`` to the open file ``fd`` (fsynced if asked), then close it."""
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_linked(paths: list[str], data: bytes, *, fsync: bool, action: str) -> None:
    """Write ``data`` once and publish it under every path of ``paths``, in order, each atomically.

    One temporary file is written (and fsynced once); every path but the last gets a hard link to it (through a
    second temporary name and a rename when the path exists already), and the last gets the file itself by a
    rename. The paths are independent afterwards: replacing one by a rename never touches the others. Where the
    file system refuses hard links, each path is written separately with `atomic_write_bytes`.
    """
    if len(paths) == 1:
        atomic_write_bytes(paths[0], data, fsync=fsync, action=action)
        return
    last = paths[-1]
    directory, _, base = last.rpartition("/")
    tmp = f"{directory}/.{base}.{token()}.tmp"
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileNotFoundError:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise storage_error(exc, last, action) from None
    try:
        _write_all(fd, data, fsync=fsync)
        for path in paths[:-1]:
            if not _link(tmp, path):
                atomic_write_bytes(path, data, fsync=fsync, action=action)
        os.replace(tmp, last)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise storage_error(exc, last, action) from None
        raise


def _link(source: str, path: str) -> bool:
    """Make ``path`` a hard link to ``source``, replacing what is there atomically; ``False`` where the file
    system has no hard links (the caller writes a copy)."""
    try:
        try:
            os.link(source, path)
            return True
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.link(source, path)
            return True
    except FileExistsError:
        directory, _, base = path.rpartition("/")
        other = f"{directory}/.{base}.{token()}.tmp"
        os.link(source, other)
        try:
            os.replace(other, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(other)
            raise
        return True
    except OSError as exc:
        if exc.errno in _NO_LINKS:
            return False
        raise


def read_bytes(path: str) -> bytes | None:
    """The content of ``path``, or ``None`` if it (or a parent directory) does not exist. Never writes."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        data = os.read(fd, 65536)
        if len(data) == 65536:
            chunks = [data]
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            data = b"".join(chunks)
        return data
    finally:
        os.close(fd)


def read_json(path: str) -> dict[str, Any] | None:
    """A JSON object from ``path``; ``None`` if it is missing or not a readable JSON object."""
    try:
        data = read_bytes(path)
    except OSError as exc:
        raise storage_error(exc, path, "read") from None
    if data is None:
        return None
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


#: One encoder for every record (``json.dumps`` with these options builds a new one per call); records are trees
#: misen builds, so the check for circular references is left out.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str, check_circular=False)


def dump_json(value: dict[str, Any]) -> bytes:
    return _ENCODER.encode(value).encode()


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Remove a directory tree, ignoring what is already gone."""
    shutil.rmtree(path, ignore_errors=True)


def tree_size(path: str | os.PathLike[str], *, allocated: bool = False) -> tuple[int, int]:
    """``(bytes, files)`` under ``path`` (0, 0 if it does not exist); symlinks are not followed. With
    ``allocated``, a sparse file counts the blocks it takes rather than its length."""
    total = files = 0
    stack = [os.fspath(path)]
    while stack:
        try:
            it = os.scandir(stack.pop())
        except OSError:
            continue
        with it:
            for entry in it:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    else:
                        st = entry.stat(follow_symlinks=False)
                        total += min(st.st_size, st.st_blocks * 512) if allocated else st.st_size
                        files += 1
                except OSError:
                    continue
    return total, files


def names(directory: str) -> list[str]:
    try:
        return os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise storage_error(exc, directory, "list") from None


def subdirs(directory: str) -> list[str]:
    out = []
    try:
        it = os.scandir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise storage_error(exc, directory, "list") from None
    with it:
        for entry in it:
            if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
                out.append(entry.path)
    return out


def sync_filesystem(path: str) -> None:
    """Flush the dirty data of the file system holding ``path`` (``syncfs``), not every file system of the machine
    (``os.sync``, the fallback where ``syncfs`` is missing): on a machine where other programs write gigabytes
    elsewhere, ``os.sync`` waits for all of it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        os.sync()
        return
    try:
        if _syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _syncfs(fd: int) -> int:
    try:
        import ctypes

        return int(ctypes.CDLL(None, use_errno=True).syncfs(fd))
    except (OSError, AttributeError):
        return -1
