"""Byte-range slots of the shared lock files ``locks/<key[:1]>.lock``: where a key's slot is, how its byte range is
locked (open file description locks), and the holder note written into it.

A slot is ``SLOT`` bytes at ``index * SLOT`` of shard file ``<shard>.lock``; the shard and the index come from the
key's first four hex digits (one for the shard, three for the index), or from a BLAKE2b digest of keys that do
not start with four lowercase hex digits. Sixteen files (not 256: creating a file costs 100-250 µs on a typical
disk, and a fresh workspace would create them all) of ``SLOTS`` slots keep each file at most 2 MiB, all 16 at most
32 MiB (sparse files: only the 4 KiB blocks of slots ever written take space, and ``misen gc`` empties idle shard
files). More slots would make two running tasks share a slot less often, but a shared slot costs
little (`._locks`: one per-key file), while the space the files take grows with their length.

The locks are Linux's open file description locks (``F_OFD_SETLK``, Linux 3.15 and later): owned by the open
file description rather than the process, so two descriptors opened separately (by two threads of one process)
exclude each other, and closing an unrelated descriptor of the same file does not drop them, unlike classic
POSIX ``F_SETLK`` locks. ``struct flock`` is packed by hand with ``l_pid`` 0, as the kernel requires for them.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import math
import os
import re
import struct
from json.encoder import encode_basestring_ascii as _string

from misen.errors import MisenError
from misen.workspace import LockHolder

from misen_workspace_disk._fs import dump_json

__all__ = [
    "AVAILABLE",
    "SLOT",
    "SLOTS",
    "Refused",
    "count_held",
    "decode_note",
    "encode_note",
    "place",
    "range_held",
    "try_range",
    "unlock_range",
]

#: Bytes per slot: room for the holder note (its ``task`` name is shortened to fit).
SLOT = 512
#: Slots per shard file (``SLOT * SLOTS`` = 2 MiB at most).
SLOTS = 4096

_SETLK: int | None = getattr(fcntl, "F_OFD_SETLK", None)
_GETLK: int | None = getattr(fcntl, "F_OFD_GETLK", None)
#: Whether this platform has open file description locks at all (Linux); elsewhere only per-task files are used.
AVAILABLE = _SETLK is not None and _GETLK is not None

# struct flock: l_type, l_whence, l_start, l_len, l_pid, padded to its alignment ("0q").
_FLOCK = struct.Struct("@hhqqi0q")
_BUSY = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES}
#: What a file system without byte-range lock support answers (then the workspace uses per-task files).
_REFUSED = {errno.EINVAL, errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS}
_HEX4 = re.compile(r"[0-9a-f]{4}")


class Refused(Exception):
    """``F_OFD_SETLK`` is missing here, or refused by the file system holding the lock files."""


def place(key: str, slots: int = SLOTS) -> tuple[str, int]:
    """``(shard, byte offset)`` of the slot of ``key`` among ``slots`` slots per shard file."""
    digits = key if _HEX4.match(key) else hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
    return digits[:1], (int(digits[1:4], 16) % slots) * SLOT


def _flock(kind: int, start: int, length: int) -> bytes:
    return _FLOCK.pack(kind, os.SEEK_SET, start, length, 0)


def try_range(fd: int, start: int, length: int = SLOT) -> bool:
    """Take the exclusive lock of bytes ``[start, start + length)`` (``length`` 0: to the end and beyond) without
    waiting: ``True`` if taken, ``False`` if another open file description holds a lock there."""
    if _SETLK is None:
        raise Refused
    try:
        fcntl.fcntl(fd, _SETLK, _flock(fcntl.F_WRLCK, start, length))
    except OSError as exc:
        if exc.errno in _BUSY:
            return False
        if exc.errno in _REFUSED:
            raise Refused from None
        raise
    return True


def unlock_range(fd: int, start: int, length: int = SLOT) -> None:
    """Let go of the lock of bytes ``[start, start + length)`` taken through ``fd``."""
    if _SETLK is not None:
        fcntl.fcntl(fd, _SETLK, _flock(fcntl.F_UNLCK, start, length))


def range_held(fd: int, start: int, length: int = SLOT) -> tuple[int, int] | None:
    """A lock (``(start, length)``) another open file description holds in ``[start, start + length)``, or
    ``None``. Takes nothing and writes nothing."""
    if _GETLK is None:
        raise Refused
    try:
        out = fcntl.fcntl(fd, _GETLK, _flock(fcntl.F_WRLCK, start, length))
    except OSError as exc:
        if exc.errno in _REFUSED:
            raise Refused from None
        raise
    kind, _, found_start, found_length, _ = _FLOCK.unpack(out)
    return None if kind == fcntl.F_UNLCK else (found_start, found_length)


def count_held(fd: int) -> int:
    """How many locks others hold in the file open as ``fd`` (``F_OFD_GETLK`` answers one at a time, in no
    particular order: each answer splits the rest of the file in two)."""
    held = 0
    todo: list[tuple[int, int | None]] = [(0, None)]
    while todo:
        start, end = todo.pop()
        found = range_held(fd, start, 0 if end is None else end - start)
        if found is None:
            continue
        held += 1
        found_start, found_length = found
        if found_start > start:
            todo.append((start, found_start))
        if found_length and (end is None or found_start + found_length < end):
            todo.append((found_start + found_length, end))
    return held


def encode_note(key: str, holder: LockHolder) -> bytes:
    """The holder note of ``key`` (JSON naming the full key), padded with zeros to ``SLOT`` bytes.

    A long ``task`` name (then ``run`` id) is shortened to fit; they only name the holder in messages.
    """
    data = _note_json(key, holder)
    if len(data) <= SLOT:
        return data.ljust(SLOT, b"\0")
    fields = holder.as_dict()
    fields["key"] = key
    for name in ("task", "run"):
        while len(data) > SLOT and fields[name]:
            value = str(fields[name])
            fields[name] = value[: max(0, len(value) - (len(data) - SLOT))]
            data = dump_json(fields)
    if len(data) > SLOT:  # only with a host name far longer than Linux allows
        raise MisenError(
            f"disk workspace: the lock holder note of {key} does not fit in {SLOT} bytes: {data!r}"
        )
    return data.ljust(SLOT, b"\0")


def _note_json(key: str, holder: LockHolder) -> bytes:
    """``dump_json`` of the note's fields, spelled out for the usual types (a lock is taken for every task)."""
    h = holder
    if (
        type(h.pid) is int
        and type(h.since) is float
        and type(h.run_started) is float
        and math.isfinite(h.since)
        and math.isfinite(h.run_started)
        and type(h.host) is str
        and type(h.run) is str
        and type(h.task) is str
    ):
        return (
            f'{{"host":{_string(h.host)},"key":{_string(key)},"pid":{h.pid!r},"run":{_string(h.run)},'
            f'"run_started":{h.run_started!r},"since":{h.since!r},"task":{_string(h.task)}}}'
        ).encode()
    return dump_json({**h.as_dict(), "key": key})


def decode_note(data: bytes) -> tuple[str, LockHolder] | None:
    """``(key, holder)`` from a slot's bytes, or ``None`` (zeros, half-written or not a note)."""
    raw = data.split(b"\0", 1)[0]
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("key"), str):
        return None
    try:
        return value["key"], LockHolder.from_dict(value)
    except (TypeError, ValueError):
        return None
