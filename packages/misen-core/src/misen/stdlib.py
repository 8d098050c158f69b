"""Built-in serializers and hashers for the standard library: pickle (dill for the rest), raw bytes, text, and
containers whose leaves (arrays, frames, tensors) are each stored by their own serializer.

Public, so that serializer plugins can build on them (`write_buffers`, `PickleSerializer`); registered by the
built-in plugin `misen._builtin.stdlib` through the same hooks as any plugin. Nothing here imports a third-party library at import time.
"""

from __future__ import annotations

import collections
import dataclasses
import fractions
import io
import pickle
import re
import shutil
from pathlib import Path
from typing import Any, ClassVar

from misen import serializer as _ser
from misen.errors import MisenError, ResultCorruptedError
from misen.hashing import Hasher
from misen.serializer import DigestWriter, LoadContext, SaveContext, Serializer, new_digest, serializer_for
from misen.session import current_session
from misen.storable import UnstorableValueError, guarded

__all__ = [
    "OVERLAP_MIN_BYTES",
    "BytesSerializer",
    "ContainerSerializer",
    "ModelHasher",
    "PickleSerializer",
    "StdlibHasher",
    "StrSerializer",
    "write_buffers",
]

PICKLE_PROTOCOL = 5
#: ``bytes`` leaves at least this large get their own file inside a container; smaller ones stay in the pickle.
BYTES_LEAF_MIN = 1024 * 1024


#: Buffers at least this large are written by `write_buffers` (checksummed from memory) rather than by pickle.
OVERLAP_MIN_BYTES = 8 * 1024 * 1024
_CHUNK = 64 * 1024 * 1024


def write_buffers(path: Path, buffers: list[memoryview], ctx: SaveContext) -> None:
    """Write ``buffers`` one after the other into the new file ``path`` with large unbuffered writes, computing
    its checksum from memory on the way and handing it to ``ctx.record_digest``, so `save_result` never reads
    the file back (`save_result` fsyncs it).

    Serializers of large binary values (arrays, tensors) can use this for disk-speed stores.
    """
    flat = [b.cast("B") if b.ndim != 1 or b.format != "B" else b for b in buffers]
    total = sum(len(b) for b in flat)
    record = getattr(ctx, "record_digest", None)
    digest = new_digest() if record is not None else None
    with open(path, "wb", buffering=0) as f:
        for b in flat:
            for start in range(0, len(b), _CHUNK):
                chunk = b[start : start + _CHUNK]
                if digest is not None:
                    digest.update(chunk)  # XXH3 runs at memory speed: no need to overlap it with the write
                done = 0
                while done < len(chunk):  # a single write() may write less (and stops at ~2 GiB on Linux)
                    done += f.write(chunk[done:])
    if digest is not None and record is not None:
        record(path, total, digest.hexdigest())


class _Overflow(Exception):
    """A value's pickle outgrew the in-memory buffer of `Serializer.save_small`."""


class _CappedBuffer(io.BytesIO):
    """An in-memory file that refuses to grow past ``limit`` bytes (raises `_Overflow`)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def write(self, data: Any) -> int:
        if self.tell() + memoryview(data).nbytes > self.limit:
            raise _Overflow
        return super().write(data)


class _LeafError(Exception):
    """A leaf's own serializer failed: report it, never retry the whole container with dill."""


def _dump(value: Any, f: Any, pickler: Any = None, dill_pickler: Any = None, reset: Any = None) -> str:
    """Pickle ``value`` into the open file ``f`` with pickle, else dill; return the engine used.

    Values that cannot be meaningfully stored (`misen.storable`) are refused by both, and a write the disk
    refuses (full, read-only) is raised as it is: neither is a reason to try dill.
    """
    start = f.tell()
    try:
        guarded(pickler or pickle.Pickler)(f, protocol=PICKLE_PROTOCOL).dump(value)
        return "pickle"
    except Exception as exc:
        first = _pickling_failure(exc)
    f.seek(start)
    f.truncate()
    if reset is not None:
        reset()
    try:
        import dill

        guarded(dill_pickler or dill.Pickler)(f, protocol=PICKLE_PROTOCOL, recurse=True).dump(value)
        return "dill"
    except Exception as exc:
        second = _pickling_failure(exc)
    raise MisenError(
        f"cannot store a result of type {type(value).__module__}.{type(value).__qualname__}: pickle failed "
        f"({type(first).__name__}: {first}) and dill failed ({type(second).__name__}: {second}); return "
        "a picklable value or give the task a serializer with @meta(serializer=...)"
    ) from None


def _pickling_failure(exc: Exception) -> Exception:
    """``exc`` if it is a pickler's refusal (worth another try); raise it (or its cause) if it is not."""
    if isinstance(exc, _LeafError):
        raise exc.__cause__ or exc from None
    if isinstance(exc, _Overflow):
        raise exc
    if isinstance(exc, UnstorableValueError) or (isinstance(exc, OSError) and exc.errno is not None):
        raise exc
    return exc


def _loader(engine: str) -> Any:
    if engine == "dill":
        import dill

        return dill.Unpickler
    if engine != "pickle":
        raise MisenError(f"unknown pickle engine {engine!r} in a stored result")
    return pickle.Unpickler


class PickleSerializer(Serializer):
    """Any picklable value; dill stands in for what pickle refuses (lambdas, local classes).

    The fallback for every type no other serializer claims. Metadata ``{"engine": "pickle" | "dill"}`` says
    which wrote ``value.pkl``. Loading a pickle runs code named by the file: only load workspaces you trust.
    """

    PLUGIN_NAME = "pickle"
    TYPES = ()
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        with DigestWriter(directory / "value.pkl", ctx) as f:
            engine = _dump(value, f)
        return {"engine": engine}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        with open(directory / "value.pkl", "rb") as f:
            return _loader(meta.get("engine", "pickle"))(f).load()

    def save_small(self, value: Any, limit: int) -> tuple[dict[str, Any], dict[str, bytes]] | None:
        buf = _CappedBuffer(limit)
        try:
            engine = _dump(value, buf)
        except _Overflow:
            return None
        return {"engine": engine}, {"value.pkl": buf.getvalue()}

    def load_small(self, files: dict[str, bytes], meta: dict[str, Any], ctx: LoadContext) -> Any:
        return _loader(meta.get("engine", "pickle"))(io.BytesIO(files["value.pkl"])).load()


class BytesSerializer(Serializer):
    """``bytes`` and ``bytearray`` as one raw file, written and read with single large system calls."""

    PLUGIN_NAME = "bytes"
    TYPES = ("builtins.bytes", "builtins.bytearray")
    FORMAT_VERSION = 1

    def match(self, value: Any) -> bool:
        return type(value) in (bytes, bytearray)

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        write_buffers(directory / "value.bin", [memoryview(value)], ctx)
        return {"type": type(value).__name__}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        path = directory / "value.bin"
        with open(path, "rb", buffering=0) as f:
            if meta.get("type") == "bytearray":
                buf = bytearray(path.stat().st_size)
                view, done = memoryview(buf), 0
                while done < len(buf):
                    n = f.readinto(view[done:])
                    if not n:
                        break
                    done += n
                return buf
            return f.read()  # FileIO.readall sizes its buffer from fstat: one allocation, no copy

    def save_small(self, value: Any, limit: int) -> tuple[dict[str, Any], dict[str, bytes]] | None:
        if len(value) > limit:
            return None
        return {"type": type(value).__name__}, {"value.bin": bytes(value)}

    def load_small(self, files: dict[str, bytes], meta: dict[str, Any], ctx: LoadContext) -> Any:
        data = files["value.bin"]
        return bytearray(data) if meta.get("type") == "bytearray" else data


class StrSerializer(Serializer):
    """``str`` as a UTF-8 text file (lone surrogates kept)."""

    PLUGIN_NAME = "str"
    TYPES = ("builtins.str",)
    FORMAT_VERSION = 1
    #: Inside a container a string stays in the container's pickle.
    CONTAINER_INLINE: ClassVar[bool] = True

    def match(self, value: Any) -> bool:
        return type(value) is str

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        (directory / "value.txt").write_bytes(value.encode("utf-8", "surrogatepass"))
        return {}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        return (directory / "value.txt").read_bytes().decode("utf-8", "surrogatepass")

    def save_small(self, value: Any, limit: int) -> tuple[dict[str, Any], dict[str, bytes]] | None:
        if len(value) > limit:  # characters: at least as many bytes
            return None
        data = value.encode("utf-8", "surrogatepass")
        return ({}, {"value.txt": data}) if len(data) <= limit else None

    def load_small(self, files: dict[str, bytes], meta: dict[str, Any], ctx: LoadContext) -> Any:
        return files["value.txt"].decode("utf-8", "surrogatepass")


# ---------------------------------------------------------------------------------------------------------------
# containers
# ---------------------------------------------------------------------------------------------------------------

_PLAIN: frozenset[type] = frozenset({int, float, complex, bool, type(None), str, range, slice})
_WALKED: tuple[type, ...] = (dict, list, tuple)
_NOT_LEAF_SERIALIZERS = frozenset({"pickle", "container", "str"})
_GENERIC_CLAIMS = frozenset({"builtins.dict", "builtins.list", "builtins.tuple"})


class _Learnt:
    """What the container serializer learnt about types, for one plugin registry (kept on it)."""

    def __init__(self) -> None:
        #: Types that never hold a leaf (no serializer but pickle and the container claims them).
        self.plain: set[type] = set(_PLAIN)
        #: The serializers that claim a dict/list/tuple subclass as their own (if any takes a value, it is a
        #: leaf; otherwise the value is walked as a container).
        self.walkable: dict[type, list[Any]] = {}


def _learnt() -> _Learnt:
    return current_session().registry.memo("misen.stdlib", _Learnt)  # type: ignore[no-any-return]


def _plain_types() -> set[type]:
    return _learnt().plain


def _walkable(value: Any) -> bool:
    """A dict, list or tuple (subclasses too) that only generic container serializers claim: its items are
    walked. A subclass with a serializer of its own (SciPy's dok matrices are dicts) is a leaf instead."""
    if not isinstance(value, _WALKED):
        return False
    tp = type(value)
    if tp in _WALKED:
        return True
    table = _learnt().walkable
    claimants = table.get(tp)
    if claimants is None:
        # claims of `object` (matched per value, like attrs models) or of the generic containers are not its own
        own = {f"{b.__module__}.{b.__qualname__}" for b in tp.__mro__[:-1]} - _GENERIC_CLAIMS
        claimants = table[tp] = [c for c in _ser._candidates(tp) if own & set(c.TYPES)]
    # a serializer that claims the subclass but declines this value (a torch state dict without tensors) leaves
    # it a container
    return not any(_ser._takes(c, value) for c in claimants)


def _is_leaf(value: Any) -> bool:
    """Whether ``value`` should be stored by its own serializer instead of inside a container's pickle."""
    tp = type(value)
    plain = _plain_types()
    if tp in plain or _walkable(value):
        return False
    ser = serializer_for(value)
    name = ser.PLUGIN_NAME
    if name in _NOT_LEAF_SERIALIZERS or ser.CONTAINER_INLINE:
        if all(c.PLUGIN_NAME == "container" for c in _ser._candidates(tp)):
            plain.add(tp)
        return False
    if name == "bytes":
        return len(value) >= BYTES_LEAF_MIN
    return True


def _fields_of(value: Any) -> list[Any] | None:
    """The field values of a dataclass or attrs instance (where leaves may hide), else None."""
    if isinstance(value, type):
        return None
    tp = type(value)
    if dataclasses.is_dataclass(tp):
        return [getattr(value, f.name, None) for f in dataclasses.fields(tp)]
    attrs_fields = getattr(tp, "__attrs_attrs__", None)
    if attrs_fields is not None:
        return [getattr(value, a.name, None) for a in attrs_fields]
    return None


def has_leaves(value: Any, limit: int = 1_000_000) -> bool:
    """Whether ``value`` (a dict, list, tuple, dataclass or attrs instance, nested) holds any leaf.

    Elements are screened by type in C first (``set(map(type, ...))``), so a long list of floats costs little.
    Past ``limit`` nodes the answer is no: the whole value is then one pickle, which is still correct.
    """
    plain = _plain_types()
    stack = [value]
    seen = 0
    while stack:
        v = stack.pop()
        seen += 1
        if seen > limit:
            return False
        if isinstance(v, dict):
            items: Any = v.values()
        elif isinstance(v, (list, tuple)):
            items = v
        else:
            items = _fields_of(v) or ()
        if set(map(type, items)) <= plain:
            continue
        for item in items:
            if type(item) in plain:
                continue
            if _walkable(item) or _fields_of(item) is not None:
                stack.append(item)
            elif _is_leaf(item):
                return True
    return False


class _Leaves:
    """The leaves met while pickling one container: each saved by its own serializer under ``leaves/<i>``."""

    def __init__(self, directory: Path, ctx: SaveContext) -> None:
        self.directory = directory
        self.ctx = ctx
        self.records: list[dict[str, Any]] = []
        self.ids: dict[int, tuple[int, Any]] = {}

    def reset(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        self.records.clear()
        self.ids.clear()

    def persistent_id(self, obj: Any) -> Any:
        if type(obj) in _plain_types() or _walkable(obj) or not _is_leaf(obj):
            return None
        known = self.ids.get(id(obj))
        if known is not None:  # the same object twice stays one object
            return known[0]
        index = len(self.records)
        try:
            self.records.append(self.ctx.save_child(obj, self.directory / str(index)))
        except Exception as exc:
            raise _LeafError() from exc
        self.ids[id(obj)] = (index, obj)
        return index

    def pickler(self, base: type) -> Any:
        leaves = self

        class LeafPickler(base):  # type: ignore[misc, valid-type]
            def persistent_id(self, obj: Any) -> Any:
                return leaves.persistent_id(obj)

        return LeafPickler


class ContainerSerializer(Serializer):
    """dicts, lists and tuples (and dataclass/attrs instances) that hold arrays, frames, tensors or big bytes.

    The structure is pickled as ``skeleton.pkl`` with every leaf replaced by its number; leaf ``i`` is stored
    by its own serializer under ``leaves/i/``, so a dict of arrays keeps each array as a memory-mappable
    ``.npy``. Keys (tuples included), subclasses (``OrderedDict``, namedtuples) and shared references are kept
    exactly. A container of plain values is declined here and stored as one pickle.

    A serializer whose values should stay inside the pickle when met in a container (scalars, small objects)
    sets the class attribute ``CONTAINER_INLINE = True``.
    """

    PLUGIN_NAME = "container"
    TYPES = ("builtins.dict", "builtins.list", "builtins.tuple", "builtins.object")
    FORMAT_VERSION = 1
    # below any library's own claim (a torch state dict wins over the generic split)
    PRIORITY = -100

    def match(self, value: Any) -> bool:
        if not _walkable(value) and _fields_of(value) is None:
            return False
        return has_leaves(value)

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import dill

        leaves = _Leaves(directory / "leaves", ctx)
        with open(directory / "skeleton.pkl", "wb") as f:
            engine = _dump(
                value, f, leaves.pickler(pickle.Pickler), leaves.pickler(dill.Pickler), leaves.reset
            )
        return {"engine": engine, "leaves": leaves.records}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        records = meta["leaves"]
        loaded: dict[int, Any] = {}

        def persistent_load(pid: Any) -> Any:
            if pid not in loaded:
                if not isinstance(pid, int) or not 0 <= pid < len(records):
                    raise ResultCorruptedError(
                        f"container result at {directory} refers to a missing leaf {pid!r}"
                    )
                loaded[pid] = ctx.load_child(directory / "leaves" / str(pid), records[pid])
            return loaded[pid]

        with open(directory / "skeleton.pkl", "rb") as f:
            unpickler = _loader(meta.get("engine", "pickle"))(f)
            unpickler.persistent_load = persistent_load
            return unpickler.load()


# ---------------------------------------------------------------------------------------------------------------
# hashers: standard-library types that hashing.py does not know by exact type
# ---------------------------------------------------------------------------------------------------------------


class StdlibHasher(Hasher):
    """Subclasses of the built-in containers (namedtuples, ``OrderedDict``, ``defaultdict``, ``Counter``),
    fractions, compiled regular expressions and zoneinfo time zones, as task arguments.

    The hashing engine tags each reduction with the value's own qualified type name, so a namedtuple never
    hashes like the plain tuple of its fields. ``OrderedDict`` keeps its order; other mappings do not.
    """

    PLUGIN_NAME = "stdlib"
    TYPES = (
        "builtins.tuple",
        "builtins.list",
        "builtins.dict",
        "builtins.set",
        "builtins.frozenset",
        "fractions.Fraction",
        "re.Pattern",
        "zoneinfo.ZoneInfo",
    )

    def reduce(self, value: Any) -> Any:
        if isinstance(value, collections.OrderedDict):
            return [list(item) for item in value.items()]
        if isinstance(value, dict):
            return dict(value)
        if isinstance(value, tuple):
            return tuple(value)
        if isinstance(value, list):
            return list(value)
        if isinstance(value, (set, frozenset)):
            return frozenset(value)
        if isinstance(value, fractions.Fraction):
            return (value.numerator, value.denominator)
        if isinstance(value, re.Pattern):
            return (value.pattern, value.flags)
        key = getattr(value, "key", None)
        if isinstance(key, str):
            return key
        raise MisenError(f"cannot hash a value of type {type(value).__qualname__}")


class ModelHasher(Hasher):
    """Pydantic models (v2 and v1) and msgspec structs as task arguments, by class and field values, like
    dataclasses. Claimed by name: neither library is imported. Nested models hash the same way."""

    PLUGIN_NAME = "models"
    TYPES = ("pydantic.main.BaseModel", "pydantic.v1.main.BaseModel", "msgspec.Struct")

    def reduce(self, value: Any) -> Any:
        tp = type(value)
        names = getattr(tp, "__struct_fields__", None)  # msgspec
        if names is None:
            fields = getattr(tp, "model_fields", None)  # pydantic 2
            if fields is None:
                fields = getattr(tp, "__fields__", {})  # pydantic 1
            names = tuple(fields)
        return {name: getattr(value, name) for name in names}
