"""Canonical hashing of task arguments: one byte encoding per value, the same in every process.

The encoding is type-tagged and length-prefixed, so distinct values never share bytes: ``1``, ``1.0``,
``True`` and ``"1"`` all differ. Dicts and sets are ordered by their encoded keys, never by Python's
``hash()``, so digests do not depend on ``PYTHONHASHSEED``. Types are dispatched through a table filled once
per type (through the MRO, then by the plugins' hashers), so the hot path is a dict lookup per value.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import hashlib
import pathlib
import uuid
from collections.abc import Callable
from typing import Any

from misen.errors import UnhashableArgumentError

__all__ = ["Hasher", "digest", "encode_value", "hash_value", "qualified_name"]

Encoder = Callable[[Any, list[Any]], None]

DIGEST_SIZE = 16


def digest(data: bytes) -> str:
    """The hex digest misen uses for identities (BLAKE2b, 128 bits)."""
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE).hexdigest()


def qualified_name(tp: type) -> str:
    return f"{tp.__module__}.{tp.__qualname__}"


class Hasher:
    """Teaches misen to hash argument values of other types (register through ``misen_add_hashers``).

    Set ``TYPES`` to the fully qualified names of the types handled (``"numpy.dtype"``); subclasses of those
    types match too. The hasher's library is never imported by misen: a type is only met once the user's code
    has imported it. `reduce` returns a value made of built-in types (ints, strings, tuples, dicts…) that stands
    for the argument in the identity; values that reduce equal hash equal.
    """

    #: Registry name, unique among hashers (``"numpy"``).
    PLUGIN_NAME: str = ""
    #: Fully qualified names of the types this hasher handles.
    TYPES: tuple[str, ...] = ()

    def reduce(self, value: Any) -> Any:
        raise NotImplementedError


class _Unhashable(Exception):
    def __init__(self, tp: type) -> None:
        self.tp = tp


def _enc_none(v: Any, out: list[Any]) -> None:
    out.append(b"N")


def _enc_bool(v: bool, out: list[Any]) -> None:
    out.append(b"T" if v else b"F")


def _enc_int(v: int, out: list[Any]) -> None:
    out.append(b"i%d;" % v)


def _enc_float(v: float, out: list[Any]) -> None:
    out.append(b"f" + v.hex().encode() + b";")


def _enc_complex(v: complex, out: list[Any]) -> None:
    out.append(b"c" + v.real.hex().encode() + b"," + v.imag.hex().encode() + b";")


def _enc_str(v: str, out: list[Any]) -> None:
    b = v.encode("utf-8", "surrogatepass")
    out.append(b"s%d:" % len(b))
    out.append(b)


def _enc_bytes(v: bytes, out: list[Any]) -> None:
    out.append(b"b%d:" % len(v))
    out.append(bytes(v))


def _enc_seq(tag: bytes) -> Encoder:
    def enc(v: Any, out: list[Any]) -> None:
        out.append(tag + b"%d[" % len(v))
        for item in v:
            _encode(item, out)
        out.append(b"]")

    return enc


def _sorted_parts(items: Any) -> list[list[Any]]:
    parts = []
    for item in items:
        sub: list[Any] = []
        _encode(item, sub)
        parts.append(sub)
    parts.sort(key=_sort_key)
    return parts


def _sort_key(parts: list[Any]) -> bytes:
    return b"".join(p if isinstance(p, bytes) else b"K" + p._key_bytes for p in parts)


def _enc_set(tag: bytes) -> Encoder:
    def enc(v: Any, out: list[Any]) -> None:
        out.append(tag + b"%d{" % len(v))
        for sub in _sorted_parts(v):
            out.extend(sub)
        out.append(b"}")

    return enc


def _enc_dict(v: dict[Any, Any], out: list[Any]) -> None:
    out.append(b"d%d{" % len(v))
    pairs = []
    for k, val in v.items():
        ks: list[Any] = []
        _encode(k, ks)
        vs: list[Any] = []
        _encode(val, vs)
        pairs.append((_sort_key(ks), ks, vs))
    pairs.sort(key=lambda p: p[0])
    for _, ks, vs in pairs:
        out.extend(ks)
        out.extend(vs)
    out.append(b"}")


def _typed(name: str, reduce: Callable[[Any], Any]) -> Encoder:
    tag = name.encode()
    head = b"x%d:" % len(tag) + tag

    def enc(v: Any, out: list[Any]) -> None:
        out.append(head)
        _encode(reduce(v), out)

    return enc


def _enc_task(v: Any, out: list[Any]) -> None:
    # A nested task is appended as itself: the task identity joins its hash, the code-agnostic key joins its key.
    out.append(v)


_ENCODERS: dict[type, Encoder] = {
    type(None): _enc_none,
    bool: _enc_bool,
    int: _enc_int,
    float: _enc_float,
    complex: _enc_complex,
    str: _enc_str,
    bytes: _enc_bytes,
    bytearray: _enc_bytes,
    list: _enc_seq(b"l"),
    tuple: _enc_seq(b"t"),
    dict: _enc_dict,
    set: _enc_set(b"S"),
    frozenset: _enc_set(b"S"),
}

_BY_BASE: list[tuple[type, Callable[[type], Encoder]]] = []
_PLUGIN_HASHERS: dict[str, Hasher] | None = None


def register_task_type(cls: type) -> None:
    _ENCODERS[cls] = _enc_task


def _plugin_hashers() -> dict[str, Hasher]:
    global _PLUGIN_HASHERS
    if _PLUGIN_HASHERS is None:
        from misen.plugins import registry

        table: dict[str, Hasher] = {}
        for hasher in registry().hashers():
            for name in hasher.TYPES:
                table.setdefault(name, hasher)
        _PLUGIN_HASHERS = table
    return _PLUGIN_HASHERS


def _resolve(tp: type) -> Encoder:
    # Enums by class and value; dataclasses and attrs classes by their fields; then plugins through the MRO.
    if issubclass(tp, enum.Enum):
        return _typed(qualified_name(tp), lambda v: v.value)
    for mro_type in tp.__mro__:
        hasher = _plugin_hashers().get(qualified_name(mro_type))
        if hasher is not None:
            return _typed(qualified_name(tp), hasher.reduce)
    if dataclasses.is_dataclass(tp):
        names = [f.name for f in dataclasses.fields(tp)]
        return _typed(qualified_name(tp), lambda v: {n: getattr(v, n) for n in names})
    if hasattr(tp, "__attrs_attrs__"):
        names = [a.name for a in tp.__attrs_attrs__]  # type: ignore[attr-defined]
        return _typed(qualified_name(tp), lambda v: {n: getattr(v, n) for n in names})
    for base, make in _BY_BASE:
        if issubclass(tp, base):
            return make(tp)
    raise _Unhashable(tp)


def _encode(v: Any, out: list[Any]) -> None:
    tp = type(v)
    enc = _ENCODERS.get(tp)
    if enc is None:
        enc = _resolve(tp)
        _ENCODERS[tp] = enc
    enc(v, out)


def _std_types() -> None:
    path_types = (pathlib.PurePosixPath, pathlib.PureWindowsPath, pathlib.PurePath)
    _BY_BASE.append((path_types[2], lambda tp: _typed("pathlib.Path", lambda v: v.as_posix())))
    _ENCODERS[_dt.datetime] = _typed("datetime.datetime", lambda v: v.isoformat())
    _ENCODERS[_dt.date] = _typed("datetime.date", lambda v: v.isoformat())
    _ENCODERS[_dt.time] = _typed("datetime.time", lambda v: v.isoformat())
    _ENCODERS[_dt.timedelta] = _typed("datetime.timedelta", lambda v: (v.days, v.seconds, v.microseconds))
    _ENCODERS[decimal.Decimal] = _typed("decimal.Decimal", str)
    _ENCODERS[uuid.UUID] = _typed("uuid.UUID", str)
    _ENCODERS[range] = _typed("range", lambda v: (v.start, v.stop, v.step))
    _ENCODERS[slice] = _typed("slice", lambda v: (v.start, v.stop, v.step))
    _ENCODERS[type(Ellipsis)] = _typed("Ellipsis", lambda v: 0)


_std_types()


def encode_value(value: Any, out: list[Any], *, what: str = "value") -> None:
    """Append the canonical encoding of ``value`` to ``out`` (nested tasks are appended as objects)."""
    try:
        _encode(value, out)
    except _Unhashable as exc:
        raise UnhashableArgumentError(
            f"{what} has type {qualified_name(exc.tp)}, which misen cannot hash into a task identity; "
            "pass simple declarative values (numbers, strings, enums, lists, dicts), let the object flow in as the "
            "output of another Task, or install the serializers package that teaches misen this type"
        ) from None
    except RecursionError:
        raise UnhashableArgumentError(f"{what} is nested too deeply (or contains itself)") from None


def hash_value(value: Any) -> str:
    """Digest of one value's canonical encoding (nested tasks by their identity)."""
    out: list[Any] = []
    encode_value(value, out)
    return digest(b"".join(p if isinstance(p, bytes) else p._id_bytes for p in out))


def reset_dispatch_cache() -> None:
    """Forget per-type dispatch decisions (after plugins change, e.g. in tests)."""
    global _PLUGIN_HASHERS
    _PLUGIN_HASHERS = None
    for tp in [t for t, e in _ENCODERS.items() if getattr(e, "__name__", "") == "enc" and t not in _BUILTIN_KEYS]:
        del _ENCODERS[tp]


_BUILTIN_KEYS = frozenset(_ENCODERS)
