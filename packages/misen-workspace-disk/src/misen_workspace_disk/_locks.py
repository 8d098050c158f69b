"""Task locks of the disk workspace: a byte-range slot of a shared lock file ``locks/<key[:1]>.lock`` per key,
with a per-key ``flock`` file ``locks/<key[:2]>/<key>.lock`` for the rare key whose slot another key holds.

**Slots.** A key's lock is an exclusive open file description lock (``F_OFD_SETLK``, see `._slots`) on its
512-byte slot (of 4,096) in one of at most 16 shard files, which exist after the first use: taking a lock
creates no file (a per-task file and its shard folder cost 100-400 µs on a typical disk; opening an existing
file and locking a range a few µs). Each acquisition opens the shard file itself, so two threads of one process
exclude each other. The holder's note (JSON naming the full key, host, pid, start time, run and task, padded with
zeros to the slot's size) is written into the slot once the range is locked, and left there on release: a note
is only believed while its range is held, and the next holder of the slot writes over all of it.

**The lock is the truth**: the kernel (or the NFS server, when its lease expires) drops it when the holder dies, so
a killed process never leaves a lock behind. The note only names the holder in error messages and for
`task.is_running()`; a note whose range is free is stale and ignored (`probe_holder` tests the range with
``F_OFD_GETLK``, which takes nothing and writes nothing). A note read while its range is held may still be the
previous holder's for the few microseconds before the new holder writes its own: an acquirer that then takes the
key's file is turned back by the checks below, as with any other collision.

**Collisions.** Two keys with the same slot (same first four hex digits) must not make one of them fail with
"already running" while nobody runs it, nor wait for an unrelated task (a task that computes another task in its
body holds a lock while it takes the next one: waiting could then deadlock). An acquirer that finds its slot
held under another key's note takes the per-key file instead (created then: the only case that creates a file),
and the two ways exclude each other: a slot holder, after writing its note, checks that the key's file (if any) is
not flocked, and backs off if it is; a file holder, once it holds the flock, checks that the slot is held under
another key's note, and backs off otherwise. Of two acquirers of one key, whichever checks second sees the other.

**Per-task files** are also the fallback where open file description locks are missing (not Linux) or refused by
the file system (``EINVAL``, ``ENOLCK``, ``EOPNOTSUPP``): the workspace is then switched to them for good, by an
empty file ``locks/per-task`` that every process reads when it first locks. They are what earlier versions used:
a lock file left by a version that did not know slots is honoured, since a slot holder checks the key's file.
Two versions running on one workspace at the same moment do not exclude each other, though (the older one never
looks at slots); let an older run finish before starting a newer version on the same workspace.

``misen gc`` empties idle shard files (no range held: it locks the whole file while it truncates it) and removes
per-key files nobody flocks. A shard file is never unlinked while the workspace is in use, so a slot's acquirer
needs no check that the path still names the file it opened. An acquirer of a per-key file re-checks, once it
holds the flock, that the path still names the file it locked, and starts again if not, so two processes never
hold "the same" lock on two inodes.

A child made by ``fork`` closes the descriptors of the locks its parent holds (``_HELD``), and a holder releases
its lock explicitly before closing, so a lock is free once its holder lets go, whatever it forked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import re
import time

from misen.errors import TaskLockedError
from misen.workspace import LockHolder

from misen_workspace_disk import _slots
from misen_workspace_disk._fs import HOST, dump_json, pid_alive, process_started_after, storage_error
from misen_workspace_disk._keyfiles import (
    file_held,
    key_path,
    open_create,
    read_file_note,
    remove_idle_file,
    try_lock,
)

__all__ = [
    "MARKER",
    "hold_lock",
    "idle_lock_files",
    "probe_holder",
    "remove_idle_lock",
    "survey",
    "uses_slots",
]

# Some looks hold a lock for a few microseconds (a probe or a slot holder's check of a per-key file: a shared
# flock; gc: the whole shard file while it empties it); an acquirer retries this long so such a look never makes
# it fail.
PROBE_GRACE = 0.02
#: Seconds between attempts while waiting for a busy lock (each wait is drawn between half and one and a half).
POLL = 0.005
#: The file whose presence switches a workspace to per-task lock files.
MARKER = "per-task"
_SHARD_FILE = re.compile(r"[0-9a-f]\.lock")

#: Whether each locks directory uses slots (decided on the first lock this process takes there).
_MODES: dict[str, bool] = {}
#: Descriptors of the locks this process holds, closed in a child made by ``fork`` (see the module docstring).
_HELD: set[int] = set()

# kept importable from here (tests)
_try_lock = try_lock


def _close_held_in_child() -> None:
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held_in_child)


def uses_slots(locks_dir: str) -> bool:
    """Whether the workspace whose lock directory is ``locks_dir`` takes slots (else per-task files)."""
    mode = _MODES.get(locks_dir)
    if mode is None:
        mode = _MODES[locks_dir] = _slots.AVAILABLE and not os.path.exists(f"{locks_dir}/{MARKER}")
    return mode


class _Lease:
    """A lock this process holds: a slot (``offset`` set) or a per-key file."""

    __slots__ = ("fd", "offset", "path")

    def __init__(self, fd: int, path: str, offset: int | None) -> None:
        self.fd, self.path, self.offset = fd, path, offset
        _HELD.add(fd)

    def write(self, note: bytes, fsync: bool) -> None:
        try:
            if self.offset is None:
                os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, note, self.offset or 0)
            if fsync:
                os.fsync(self.fd)
        except OSError as exc:
            self.release()
            raise storage_error(exc, self.path, "write the lock holder") from None

    def release(self) -> None:
        # Let go explicitly before closing: a child forked meanwhile may share the open file description.
        try:
            if self.offset is None:
                # A per-key file's note goes: it is also read without a lock test.
                os.ftruncate(self.fd, 0)
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            else:
                _slots.unlock_range(self.fd, self.offset)  # the note stays (see the module docstring)
        except OSError:
            pass  # closing the descriptor below lets go as well
        finally:
            _HELD.discard(self.fd)
            os.close(self.fd)


class _Busy:
    """Not taken: ``holder`` holds it (``None``: not known yet); ``again``: try at once (a file was replaced)."""

    __slots__ = ("again", "holder")

    def __init__(self, holder: LockHolder | None = None, *, again: bool = False) -> None:
        self.holder, self.again = holder, again


def _slot_note(fd: int, offset: int) -> tuple[str, LockHolder] | None:
    try:
        return _slots.decode_note(os.pread(fd, _slots.SLOT, offset))
    except OSError:
        return None


def _try_slot(locks_dir: str, key: str, holder: LockHolder, note: bytes, fsync: bool) -> _Lease | _Busy:
    shard, offset = _slots.place(key)
    path = f"{locks_dir}/{shard}.lock"
    fd = open_create(path, "take the task lock")
    try:
        taken = _slots.try_range(fd, offset)
    except OSError as exc:
        os.close(fd)
        raise storage_error(exc, path, "take the task lock") from None
    except BaseException:
        os.close(fd)
        raise
    if not taken:
        found = _slot_note(fd, offset)
        os.close(fd)
        if found is None or found[0] == key:
            return _Busy(found[1] if found else None)
        return _try_file(
            locks_dir, key, holder, fsync, slot=(path, offset)
        )  # a collision: use the key's file
    lease = _Lease(fd, path, offset)
    lease.write(note, fsync)
    held, other = file_held(key_path(locks_dir, key))
    if held:  # the key is held through its own file (a collision's holder, or an earlier version of misen)
        lease.release()
        return _Busy(other)
    return lease


def _slot_state(path: str, offset: int, key: str) -> tuple[str, LockHolder | None]:
    """``("free" | "key" | "other" | "unknown", holder)`` of a slot, taking nothing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return "free", None
    try:
        if _slots.range_held(fd, offset) is None:
            return "free", None
        found = _slot_note(fd, offset)
    except (_slots.Refused, OSError):
        return "unknown", None
    finally:
        os.close(fd)
    if found is None:
        return "unknown", None
    return ("key" if found[0] == key else "other"), found[1]


def _try_file(
    locks_dir: str, key: str, holder: LockHolder, fsync: bool, slot: tuple[str, int] | None = None
) -> _Lease | _Busy:
    """Take the per-key file of ``key``; with ``slot``, only while that slot is held under another key."""
    path = key_path(locks_dir, key)
    fd = open_create(path, "take the task lock")
    try:
        taken = try_lock(fd, path)
    except BaseException:
        os.close(fd)
        raise
    if taken is None:
        os.close(fd)
        return _Busy(again=True)
    if not taken:
        other = read_file_note(fd)
        os.close(fd)
        return _Busy(other)
    lease = _Lease(fd, path, None)
    if slot is not None:
        state, other = _slot_state(*slot, key)
        if state != "other":
            lease.release()
            return _Busy(again=True) if state == "free" else _Busy(other)
    lease.write(dump_json({**holder.as_dict(), "key": key}), fsync)
    return lease


def _attempt(locks_dir: str, key: str, holder: LockHolder, note: bytes, fsync: bool) -> _Lease | _Busy:
    switched = False
    if uses_slots(locks_dir):
        try:
            return _try_slot(locks_dir, key, holder, note, fsync)
        except _slots.Refused:
            _MODES[locks_dir] = False
            switched = True
    got = _try_file(locks_dir, key, holder, fsync)
    if switched and isinstance(got, _Lease):  # file locks work where ranges were refused: say so for good
        with contextlib.suppress(OSError):
            os.close(os.open(f"{locks_dir}/{MARKER}", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666))
    return got


def hold_lock(locks_dir: str, key: str, holder: LockHolder, *, timeout: float, fsync: bool) -> _Hold:
    """Hold the exclusive lock ``key`` for the ``with`` block, or raise `TaskLockedError` naming the holder.

    Waits up to ``timeout`` seconds for a holder of ``key`` to let go; never for a holder of another key.
    """
    return _Hold(locks_dir, key, holder, timeout, fsync)


class _Hold:
    """`hold_lock`'s context manager (a plain class: one is entered for every task)."""

    __slots__ = ("fsync", "holder", "key", "lease", "locks_dir", "timeout")

    def __init__(self, locks_dir: str, key: str, holder: LockHolder, timeout: float, fsync: bool) -> None:
        self.locks_dir, self.key, self.holder, self.timeout, self.fsync = (
            locks_dir,
            key,
            holder,
            timeout,
            fsync,
        )
        self.lease: _Lease | None = None

    def __enter__(self) -> None:
        key, holder = self.key, self.holder
        deadline = time.monotonic() + max(self.timeout, PROBE_GRACE)
        note = _slots.encode_note(key, holder)  # before any lock is taken: it may raise
        unknown = 0
        while True:
            got = _attempt(self.locks_dir, key, holder, note, self.fsync)
            if isinstance(got, _Lease):
                self.lease = got
                return
            if got.again:
                continue
            if time.monotonic() < deadline:
                time.sleep(POLL * random.uniform(0.5, 1.5))
                continue
            if got.holder is None and unknown < 5:
                # No note: the holder has just taken a slot nobody used before (or one gc emptied) and not
                # written its note yet. Look again, and take the lock if it is free now.
                unknown += 1
                time.sleep(0.002)
                continue
            other = got.holder
            who = other.describe() if other is not None else "another process (it has not said who yet)"
            what = f"task {other.task}" if other is not None and other.task else f"task {key}"
            raise TaskLockedError(
                f"{what} is already running in this workspace (lock held by {who}); it was not started twice — "
                "wait for it to finish, and a later run finds its result cached",
                other,
            )

    def __exit__(self, *exc: object) -> None:
        lease, self.lease = self.lease, None
        if lease is not None:
            lease.release()


def _alive(holder: LockHolder) -> bool:
    """Whether a note may name a live holder (on this host: its process exists and is the one that wrote it)."""
    return holder.host != HOST or (
        pid_alive(holder.pid) and not process_started_after(holder.pid, holder.since)
    )


def probe_holder(locks_dir: str, key: str) -> LockHolder | None:
    """The live holder of lock ``key``, or ``None``. Writes nothing.

    Checks, cheapest first: the key's slot (a note naming ``key`` whose range someone holds), then the key's
    per-key file (a note from a live process, and a shared flock that cannot be taken).
    """
    if _slots.AVAILABLE:
        shard, offset = _slots.place(key)
        try:
            fd = os.open(f"{locks_dir}/{shard}.lock", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                found = _slot_note(fd, offset)
                if found is not None and found[0] == key and _alive(found[1]):
                    with contextlib.suppress(_slots.Refused, OSError):
                        if _slots.range_held(fd, offset) is not None:
                            return found[1]
            finally:
                os.close(fd)
    path = key_path(locks_dir, key)
    holder = read_file_note(path)
    if holder is None or not _alive(holder):
        return None
    held, _ = file_held(path)
    return holder if held else None


def _shard_held(path: str) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        return _slots.count_held(fd)
    except (_slots.Refused, OSError):
        return 0
    finally:
        os.close(fd)


def survey(locks_dir: str) -> list[tuple[str, int]]:
    """Every lock file with how many locks are held in it: shard files, then per-key files. Writes nothing."""
    found: list[tuple[str, int]] = []
    for dirpath, _, files in os.walk(locks_dir):
        top = dirpath == locks_dir
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            if top and _SHARD_FILE.fullmatch(name):
                found.append((path, _shard_held(path)))
            elif not top and name.endswith(".lock"):
                found.append((path, int(file_held(path)[0])))
    return found


def idle_lock_files(locks_dir: str) -> list[str]:
    """The lock files `remove_idle_lock` would tidy: per-key files and non-empty shard files, nobody holding a lock
    in them."""
    return [path for path, held in survey(locks_dir) if not held and not _emptied_shard(path)]


def _is_shard(path: str) -> bool:
    return (
        _SHARD_FILE.fullmatch(os.path.basename(path)) is not None
        and os.path.basename(os.path.dirname(path)) == "locks"
    )


def _emptied_shard(path: str) -> bool:
    if not _is_shard(path):
        return False
    try:
        return os.stat(path).st_size == 0
    except OSError:
        return True


def remove_idle_lock(path: str) -> None:
    """Tidy up lock file ``path`` if nobody holds a lock in it: a shard file is emptied (an acquirer may have it
    open already), a per-key file unlinked (its acquirers re-open a replaced file)."""
    if not _is_shard(path):
        remove_idle_file(path)  # a per-key file, in locks/<key[:2]>/
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return
    try:
        with contextlib.suppress(_slots.Refused, OSError):
            if _slots.try_range(fd, 0, 0):  # the whole file: no slot is held
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)
