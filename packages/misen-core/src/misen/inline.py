"""Small results kept inside the task's record instead of a folder of their own.

A cold task whose value pickles to a few hundred bytes would otherwise create a staging folder, the value's file
and a manifest, three new inodes that cost more on a real disk than everything else the task does. A serializer
that can give its files in memory (`misen.Serializer.save_small`: pickle, ``str`` and ``bytes`` do) has results of
at most `INLINE_MAX_BYTES` stored as the ``inline`` field of the record `misen.cache.link` writes anyway:

``{"result_hash": RH, "manifest": {...}, "data": {file name: base64 of its bytes}}``

The manifest is exactly the one a folder would hold (serializer, version, metadata, each file's size and XXH3
digest), so the result hash is the same either way. The record is also written under the name ``("result",
RH)``, so the result can be found by its hash alone (a dependency's value, early cutoff, ``misen workspace
check``). Every load checks the manifest against the hash and every file against its size and digest, as for a
folder: a damaged record is reported as `misen.integrity.ResultDamagedError` and healed like a damaged folder.
"""

from __future__ import annotations

import binascii
import functools
from typing import Any

from misen.errors import MisenError
from misen.integrity import DIGEST_FIELD, ResultDamagedError, new_digest
from misen.serializer import (
    RESULT_FORMAT,
    _as_instance,
    loader_for,
    result_hash_of,
    serializer_for,
    serializer_name,
)

__all__ = ["INLINE_MAX_BYTES", "RECORD_KIND", "inline_of", "load_inline", "pack", "size_of", "verify"]

#: Results whose files add up to at most this many bytes go into the record.
INLINE_MAX_BYTES = 4096
#: The record kind under which an inline result is found by its hash.
RECORD_KIND = "result"


def _digest(data: bytes) -> str:
    h = new_digest()
    h.update(data)
    return str(h.hexdigest())


@functools.cache
def _offers_small(tp: type) -> bool:
    """Whether ``tp``'s `save_small`/`load_small` belong to its `save`/`load`: a subclass that changes how values
    are saved, but inherits another format's `save_small`, keeps folders."""

    def owner(name: str) -> type:
        return next(c for c in tp.__mro__ if name in c.__dict__)

    return issubclass(owner("save_small"), owner("save")) and issubclass(owner("load_small"), owner("load"))


def pack(value: Any, serializer: Any = None) -> dict[str, Any] | None:
    """The ``inline`` field for ``value``, or ``None`` when it goes to a folder (too large, or a serializer that
    cannot save in memory)."""
    ser = _as_instance(serializer) if serializer is not None else serializer_for(value)
    if not _offers_small(type(ser)):
        return None
    small = ser.save_small(value, INLINE_MAX_BYTES)
    if small is None:
        return None
    meta, files = small
    if sum(len(data) for data in files.values()) > INLINE_MAX_BYTES:
        return None
    body = {
        "format": RESULT_FORMAT,
        "serializer": serializer_name(ser),
        "version": ser.FORMAT_VERSION,
        "meta": meta,
        "files": {
            name: {"size": len(data), DIGEST_FIELD: _digest(data)} for name, data in sorted(files.items())
        },
    }
    rh = result_hash_of(body)
    encoded = {name: binascii.b2a_base64(data, newline=False).decode("ascii") for name, data in files.items()}
    return {"result_hash": rh, "manifest": {**body, "result_hash": rh}, "data": encoded}


def inline_of(record: dict[str, Any] | None, rh: str) -> dict[str, Any] | None:
    """The record's inline result if it is result ``rh`` (unchecked), else ``None``."""
    inline = record.get("inline") if isinstance(record, dict) else None
    if isinstance(inline, dict) and inline.get("result_hash") == rh:
        return inline
    return None


def size_of(inline: dict[str, Any]) -> int:
    """The bytes of the result's files, as its manifest records them."""
    files = (inline.get("manifest") or {}).get("files") or {}
    return sum(int(info.get("size", 0)) for info in files.values() if isinstance(info, dict))


def verify(inline: dict[str, Any], rh: str) -> dict[str, bytes]:
    """Check every byte of an inline result against its manifest and the manifest against ``rh``; return its
    files' bytes. Raises `ResultDamagedError` naming the damage."""
    where = f"the record of result {rh}"
    manifest = inline.get("manifest")
    data = inline.get("data")
    if (
        not isinstance(manifest, dict)
        or not isinstance(data, dict)
        or not isinstance(manifest.get("files"), dict)
    ):
        raise ResultDamagedError(where, None, "manifest", "a malformed inline result")
    body = {k: v for k, v in manifest.items() if k != "result_hash"}
    if manifest.get("result_hash") != rh or result_hash_of(body) != rh:
        raise ResultDamagedError(where, None, "manifest", "its manifest describes another result")
    out: dict[str, bytes] = {}
    for name, info in manifest["files"].items():
        text = data.get(name)
        if not isinstance(text, str):
            raise ResultDamagedError(where, name, "missing", f"its file {name} is missing")
        try:
            raw = binascii.a2b_base64(text, strict_mode=True)
        except (binascii.Error, ValueError):
            raise ResultDamagedError(where, name, "checksum", f"file {name} is not valid base64") from None
        if not isinstance(info, dict) or len(raw) != info.get("size"):
            raise ResultDamagedError(
                where, name, "size", f"file {name} has {len(raw)} bytes, not its recorded size"
            )
        if info.get(DIGEST_FIELD) != _digest(raw):
            raise ResultDamagedError(where, name, "checksum", f"checksum mismatch in {name}")
        out[name] = raw
    return out


def load_inline(inline: dict[str, Any], rh: str, *, serializer: Any = None) -> Any:
    """The value of an inline result, checked first (`verify`)."""
    files = verify(inline, rh)
    manifest = inline["manifest"]
    ser, ctx = loader_for(manifest, serializer)
    try:
        return ser.load_small(files, manifest.get("meta", {}), ctx)
    except (MisenError, MemoryError):
        raise
    except Exception as exc:  # bytes that passed their checksums but do not load: damage, as for a folder
        message = str(exc).splitlines()[0] if str(exc) else ""
        detail = (
            f"serializer {manifest['serializer']!r} could not read it ({type(exc).__name__}: {message[:200]})"
        )
        raise ResultDamagedError(f"the record of result {rh}", None, "unreadable", detail) from None
