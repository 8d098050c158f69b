"""Task identity, in one place: the hash function, every tag and prefix, the canonical value encoding, and the
one walker that finds tasks inside arguments.

A task's **hash** is BLAKE2b-128 over ``TASK_TAG + id + NUL + code + NUL + arguments``, where ``code`` is
``b"code:" + fingerprint digest`` (or nothing when code changes are ignored) and ``arguments`` is the canonical
encoding of the bound arguments (after ``exclude``, ``defaults`` and ``versions``), a nested task standing for
its own hash. Its **key** is the same without any code fingerprint (it finds results of earlier code). Its
**resolved hash** replaces each nested task by the hash of that task's *result* (early cutoff).

The encoding is type-tagged and length-prefixed, so distinct values never share bytes (``1``, ``1.0``, ``True``
and ``"1"`` differ), and dicts and sets are ordered by their encoded items, never by ``hash()``, so digests do
not depend on ``PYTHONHASHSEED``.

The walker (`freeze`, `materialize`, `collect_tasks`) is the only code that decides what "a task inside an
argument" is. Tasks may be nested in lists, tuples (named tuples too), dicts (keys and values), sets, frozensets,
dataclass instances and attrs instances, up to `MAX_DEPTH` levels; a task anywhere else is refused at
``Task(...)``. `freeze` copies an argument into an immutable form (lists become `FrozenList`, dicts `FrozenDict`,
sets `FrozenSet`; dataclass and attrs instances are copied) so that nothing done to the caller's objects after
``Task(...)`` changes the task; `materialize` turns the frozen form back into ordinary, fresh Python objects, with
nested tasks replaced by their results, when the task is called.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import decimal
import enum
import hashlib
import pathlib
import sys
import types
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from misen.errors import UnhashableArgumentError
from misen.fingerprint import function_fingerprint
from misen.session import current_session

if TYPE_CHECKING:
    from misen.tasks import Task

__all__ = [
    "ASSIGNED_RESOURCES",
    "ASSIGNED_RESOURCES_PER_NODE",
    "CODE_PREFIX",
    "DIGEST_SIZE",
    "MAX_DEPTH",
    "TASK_TAG",
    "WORK_DIR",
    "FrozenDict",
    "FrozenList",
    "FrozenSet",
    "RuntimeArgument",
    "at_default",
    "collect_tasks",
    "digest",
    "digest_bytes",
    "encode_value",
    "freeze",
    "materialize",
    "qualified_name",
]

#: Bytes in every digest misen makes (BLAKE2b, 128 bits).
DIGEST_SIZE = 16
#: Opens every task's identity; the version is bumped only if the recipe below changes.
TASK_TAG = b"misen.task/1\x00"
#: Precedes the code fingerprint's digest in the identity.
CODE_PREFIX = b"code:"
#: Opens a resolved identity (dependencies by their result hashes).
RESOLVED_TAG = b"resolved/"
#: How deeply containers may nest inside one argument.
MAX_DEPTH = 100


def digest_bytes(data: bytes) -> bytes:
    """The raw digest misen uses for identities."""
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE).digest()


def digest(data: bytes) -> str:
    """The hex digest misen uses for identities (BLAKE2b, 128 bits)."""
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE).hexdigest()


def module_name(module: str | None) -> str:
    """``module``, with ``__main__`` mapped to the module ``python -m`` ran (so a type or function defined in an
    experiment module is named the same whether the module runs as a script or is imported)."""
    if module == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        name = getattr(spec, "name", None)
        if name:
            return str(name)
    return module or ""


def qualified_name(tp: type) -> str:
    """``module.QualName`` of a type, ``__main__`` mapped as in `module_name`."""
    return f"{module_name(tp.__module__)}.{tp.__qualname__}"


# ---------------------------------------------------------------------------------------------------------------
# frozen containers: what a task keeps of a list, dict or set argument
# ---------------------------------------------------------------------------------------------------------------


class FrozenList(tuple):  # type: ignore[type-arg]
    """A list argument, frozen inside a task (it hashes like the list and compares equal to it; the task
    function receives a list)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(list(self))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list | FrozenList):
            return list(self) == list(other)
        return False

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__


class FrozenSet(frozenset):  # type: ignore[type-arg]
    """A set argument, frozen inside a task (the task function receives a set)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(set(self)) if self else "set()"


def _readonly(self: Any, *args: Any, **kwargs: Any) -> Any:
    raise TypeError("a task's arguments are read-only: make a new Task instead")


class FrozenDict(dict):  # type: ignore[type-arg]
    """A dict argument, frozen inside a task (the task function receives a dict)."""

    __slots__ = ()
    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _readonly  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(dict(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


_SCALARS = frozenset({int, float, str, bool, type(None), bytes, complex})
#: Types whose values cannot change after ``Task(...)``: kept as they are.
_IMMUTABLE = frozenset(
    {
        *_SCALARS,
        FrozenList,
        FrozenSet,
        frozenset,
        range,
        slice,
        type(Ellipsis),
        decimal.Decimal,
        uuid.UUID,
        _dt.datetime,
        _dt.date,
        _dt.time,
        _dt.timedelta,
        pathlib.PurePosixPath,
        pathlib.PureWindowsPath,
        pathlib.PosixPath,
        pathlib.WindowsPath,
    }
)


def _is_namedtuple(tp: type) -> bool:
    return issubclass(tp, tuple) and hasattr(tp, "_fields")


def _record_fields(tp: type) -> tuple[str, ...] | None:
    """Field names of a dataclass or attrs class, else ``None``."""
    if dataclasses.is_dataclass(tp):
        return tuple(f.name for f in dataclasses.fields(tp))
    attributes = getattr(tp, "__attrs_attrs__", None)
    if attributes is not None:
        return tuple(a.name for a in attributes)
    return None


class _Freezer:
    """One walk over an argument: copies it into its frozen form and finds the tasks inside it."""

    __slots__ = ("deps", "mutable", "path", "task_type", "what")

    def __init__(self, task_type: type, what: str) -> None:
        self.task_type = task_type
        self.what = what
        self.deps: list[Task[Any]] = []
        #: Whether a value the walker cannot freeze (a mutable dataclass, an array) is kept: such a task is
        #: re-checked against its identity before it runs.
        self.mutable = False
        self.path: set[int] = set()

    def __call__(self, v: Any, depth: int) -> Any:
        tp = type(v)
        if tp in _SCALARS:
            return v
        if tp is self.task_type:
            self.deps.append(v)
            return v
        if depth > MAX_DEPTH:
            raise UnhashableArgumentError(f"{self.what} is nested more than {MAX_DEPTH} levels deep")
        if tp is list or tp is tuple or tp is dict or tp is set or tp is frozenset or tp is FrozenList:
            key = id(v)
            if key in self.path:
                raise UnhashableArgumentError(f"{self.what} contains itself (a {tp.__name__} that holds itself)")
            self.path.add(key)
            try:
                d = depth + 1
                if tp is list or tp is FrozenList:
                    return FrozenList([self(x, d) for x in v])
                if tp is tuple:
                    return tuple([self(x, d) for x in v])
                if tp is dict:
                    return FrozenDict({self(k, d): self(x, d) for k, x in v.items()})
                if tp is set:
                    return FrozenSet([self(x, d) for x in v])
                return frozenset([self(x, d) for x in v])
            finally:
                self.path.discard(key)
        if tp is FrozenDict or tp is FrozenSet:
            return v
        if tp in _IMMUTABLE or isinstance(v, enum.Enum) or getattr(tp, "__misen_immutable__", False):
            return v
        if _is_namedtuple(tp):
            key = id(v)
            if key in self.path:
                raise UnhashableArgumentError(f"{self.what} contains itself")
            self.path.add(key)
            try:
                return tp(*[self(x, depth + 1) for x in v])
            finally:
                self.path.discard(key)
        names = _record_fields(tp)
        if names is not None:
            key = id(v)
            if key in self.path:
                raise UnhashableArgumentError(f"{self.what} contains itself (a {tp.__qualname__} that holds itself)")
            self.path.add(key)
            try:
                new = copy.copy(v)
                for name in names:
                    object.__setattr__(new, name, self(getattr(v, name), depth + 1))
            finally:
                self.path.discard(key)
            if not _is_frozen_record(tp):
                self.mutable = True
            return new
        # Anything else (an array, a model, a value a plugin hasher knows) is kept as it is; its hasher decides
        # whether it can be an argument at all. A task inside it is refused after hashing (see `check_nesting`).
        self.mutable = True
        return v


def _is_frozen_record(tp: type) -> bool:
    params = getattr(tp, "__dataclass_params__", None)
    if params is not None:
        return bool(params.frozen)
    return getattr(tp, "__setattr__", None) is not object.__setattr__ and "frozen" in repr(
        getattr(tp, "__setattr__", "")
    )


def freeze(value: Any, task_type: type, what: str) -> tuple[Any, list[Task[Any]], bool]:
    """``(frozen copy, tasks inside, whether a mutable value was kept)`` for one argument value."""
    walker = _Freezer(task_type, what)
    frozen = walker(value, 0)
    return frozen, walker.deps, walker.mutable


def collect_tasks(value: Any, task_type: type, out: list[Task[Any]]) -> None:
    """Append every task inside a frozen argument to ``out`` (the walk `freeze` did, without copying)."""
    tp = type(value)
    if tp is task_type:
        out.append(value)
    elif tp in _SCALARS:
        return
    elif tp is FrozenDict or tp is dict:
        for k, x in value.items():
            collect_tasks(k, task_type, out)
            collect_tasks(x, task_type, out)
    elif tp in (FrozenList, tuple, FrozenSet, frozenset, list, set) or _is_namedtuple(tp):
        for x in value:
            collect_tasks(x, task_type, out)
    else:
        names = _record_fields(tp)
        if names is not None:
            for name in names:
                collect_tasks(getattr(value, name), task_type, out)


def materialize(value: Any, task_type: type, results: Mapping[bytes, Any] | None) -> Any:
    """A fresh, ordinary Python copy of a frozen argument, each nested task replaced by
    ``results[task._id_bytes]`` (kept as the task itself when ``results`` is ``None``)."""
    tp = type(value)
    if tp in _SCALARS:
        return value
    if tp is task_type:
        return value if results is None else results[value._id_bytes]
    if tp is FrozenList:
        return [materialize(x, task_type, results) for x in value]
    if tp is FrozenDict:
        return {materialize(k, task_type, results): materialize(x, task_type, results) for k, x in value.items()}
    if tp is FrozenSet:
        return {materialize(x, task_type, results) for x in value}
    if tp is tuple:
        return tuple([materialize(x, task_type, results) for x in value])
    if tp is frozenset:
        return frozenset([materialize(x, task_type, results) for x in value])
    if _is_namedtuple(tp):
        return tp(*[materialize(x, task_type, results) for x in value])
    names = _record_fields(tp)
    if names is not None:
        new = copy.copy(value)
        for name in names:
            object.__setattr__(new, name, materialize(getattr(value, name), task_type, results))
        return new
    return value


# ---------------------------------------------------------------------------------------------------------------
# the canonical encoding
# ---------------------------------------------------------------------------------------------------------------

Encoder = Callable[[Any, list[Any]], None]


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
    def encode_sequence(v: Any, out: list[Any]) -> None:
        out.append(tag + b"%d[" % len(v))
        for item in v:
            _encode(item, out)
        out.append(b"]")

    return encode_sequence


def _sort_key(parts: list[Any]) -> bytes:
    return b"".join(p if type(p) is bytes else b"K" + p._key_bytes for p in parts)


def _enc_set(v: Any, out: list[Any]) -> None:
    out.append(b"S%d{" % len(v))
    subs = []
    for item in v:
        sub: list[Any] = []
        _encode(item, sub)
        subs.append(sub)
    subs.sort(key=_sort_key)
    for sub in subs:
        out.extend(sub)
    out.append(b"}")


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


def typed_encoder(name: str, reduce: Callable[[Any], Any]) -> Encoder:
    """An encoder for values of a named type, by the canonical encoding of ``reduce(value)``."""
    tag = name.encode()
    head = b"x%d:" % len(tag) + tag

    def encode_typed(v: Any, out: list[Any]) -> None:
        out.append(head)
        _encode(reduce(v), out)

    return encode_typed


def _enc_task(v: Any, out: list[Any]) -> None:
    # A nested task is appended as itself: the identity takes its hash, the code-agnostic key takes its key.
    out.append(v)


def _path_encoder(v: Any, out: list[Any]) -> None:
    _PATH(v, out)


_PATH = typed_encoder("pathlib.Path", lambda v: v.as_posix())

#: Encoders by exact type, for the types misen knows without any plugin (immutable after import).
_BUILTIN_ENCODERS: Mapping[type, Encoder] = types.MappingProxyType(
    {
        type(None): _enc_none,
        bool: _enc_bool,
        int: _enc_int,
        float: _enc_float,
        complex: _enc_complex,
        str: _enc_str,
        bytes: _enc_bytes,
        bytearray: _enc_bytes,
        list: _enc_seq(b"l"),
        FrozenList: _enc_seq(b"l"),
        tuple: _enc_seq(b"t"),
        dict: _enc_dict,
        FrozenDict: _enc_dict,
        set: _enc_set,
        FrozenSet: _enc_set,
        frozenset: _enc_set,
        pathlib.PurePath: _path_encoder,
        pathlib.PurePosixPath: _path_encoder,
        pathlib.PureWindowsPath: _path_encoder,
        pathlib.PosixPath: _path_encoder,
        pathlib.WindowsPath: _path_encoder,
        _dt.datetime: typed_encoder("datetime.datetime", lambda v: v.isoformat()),
        _dt.date: typed_encoder("datetime.date", lambda v: v.isoformat()),
        _dt.time: typed_encoder("datetime.time", lambda v: v.isoformat()),
        _dt.timedelta: typed_encoder("datetime.timedelta", lambda v: (v.days, v.seconds, v.microseconds)),
        decimal.Decimal: typed_encoder("decimal.Decimal", str),
        uuid.UUID: typed_encoder("uuid.UUID", str),
        range: typed_encoder("range", lambda v: (v.start, v.stop, v.step)),
        slice: typed_encoder("slice", lambda v: (v.start, v.stop, v.step)),
        type(Ellipsis): typed_encoder("Ellipsis", lambda v: 0),
    }
)


def resolve_encoder(tp: type, hashers: Mapping[str, Any]) -> Encoder:
    """The encoder for a type misen has no built-in encoder for.

    Enums by class and value; then a registered `misen.Hasher` claiming the type or a base (``hashers``: qualified
    type name → hasher), under the hasher's ``TYPE_TAG`` when it sets one, else the type's qualified name; then dataclasses and attrs classes by their fields; then path subclasses.
    """
    if issubclass(tp, enum.Enum):
        return typed_encoder(qualified_name(tp), lambda v: v.value)
    for mro_type in tp.__mro__:
        hasher = hashers.get(f"{mro_type.__module__}.{mro_type.__qualname__}")
        if hasher is not None:
            return typed_encoder(getattr(hasher, "TYPE_TAG", None) or qualified_name(tp), hasher.reduce)
    names = _record_fields(tp)
    if names is not None:
        return typed_encoder(qualified_name(tp), lambda v: {n: getattr(v, n) for n in names})
    if issubclass(tp, pathlib.PurePath):
        return _path_encoder
    raise _Unhashable(tp)


def _encode(v: Any, out: list[Any]) -> None:
    tp = type(v)
    enc = _BUILTIN_ENCODERS.get(tp)
    if enc is None:
        enc = _session_encoder(tp)
    enc(v, out)


def _session_encoder(tp: type) -> Encoder:
    if getattr(tp, "__misen_task__", False):
        return _enc_task
    registry = current_session().registry
    table = registry.encoders
    enc = table.get(tp)
    if enc is None:
        enc = table[tp] = resolve_encoder(tp, registry.hasher_table())
    return enc


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


def joined(parts: list[Any], attr: str) -> bytes:
    """The encoded bytes of ``parts``, each nested task standing for its ``attr`` (``_id_bytes``/``_key_bytes``)."""
    return b"".join([p if type(p) is bytes else getattr(p, attr) for p in parts])


# ---------------------------------------------------------------------------------------------------------------
# run-time arguments
# ---------------------------------------------------------------------------------------------------------------


class RuntimeArgument:
    """A marker passed as an argument value that the executor replaces when the task runs.

    Runtime arguments never enter a task's identity.
    """

    __slots__ = ("name",)
    __misen_immutable__ = True

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self) -> tuple[Any, ...]:
        return (runtime_argument, (self.name,))


#: A per-task scratch directory (`pathlib.Path`): persistent for ``cache=True`` tasks, ephemeral otherwise.
WORK_DIR: Any = RuntimeArgument("WORK_DIR")
#: The resources bound to the task process: an object with ``cpus`` and ``gpus`` index lists.
ASSIGNED_RESOURCES: Any = RuntimeArgument("ASSIGNED_RESOURCES")
#: One such object per node of a multi-node task.
ASSIGNED_RESOURCES_PER_NODE: Any = RuntimeArgument("ASSIGNED_RESOURCES_PER_NODE")

_RUNTIME: Mapping[str, RuntimeArgument] = types.MappingProxyType(
    {r.name: r for r in (WORK_DIR, ASSIGNED_RESOURCES, ASSIGNED_RESOURCES_PER_NODE)}
)


def runtime_argument(name: str) -> RuntimeArgument:
    """The run-time argument marker called ``name``."""
    return _RUNTIME[name]


# ---------------------------------------------------------------------------------------------------------------
# composing a task's identity
# ---------------------------------------------------------------------------------------------------------------


class _NoTask:
    """Stands for the task type where a value can hold no task (``@meta(defaults)`` values)."""


def _equal(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def at_default(value: Any, default: Any) -> bool:
    """Whether a (frozen) argument value equals a ``@meta(defaults)`` value (same type, equal)."""
    return _equal(freeze(default, _NoTask, "")[0], value)


def encode_arguments(meta: Any, arguments: Mapping[str, Any], fn_name: str) -> list[Any]:
    """The canonical encoding of a task's (frozen) arguments: sorted by name, after ``exclude``, ``defaults``
    and ``versions``; run-time arguments left out. Nested tasks are appended as objects."""
    parts: list[Any] = []
    versions = meta.versions
    exclude = meta.exclude
    defaults = meta.defaults
    for name in sorted(arguments):
        value = arguments[name]
        if name in exclude or type(value) is RuntimeArgument:
            continue
        if name in defaults and at_default(value, defaults[name]):
            continue
        nb = name.encode()
        parts.append(b"a%d:" % len(nb) + nb)
        encode_value(value, parts, what=f"argument {name!r} of task {fn_name}")
        if versions and name in versions:
            try:
                ver = versions[name].get(value)
            except TypeError:
                ver = None
            if ver is not None:
                parts.append(b"v%d;" % ver)
    return parts


def task_head(meta: Any, fn: Any, fn_name: str) -> bytes:
    """``TASK_TAG + id + NUL`` (a function without an id stands in by its importable name)."""
    ident = meta.id
    if ident is None:
        ident = f"<no id>{module_name(getattr(fn, '__module__', ''))}.{fn_name}"
    return TASK_TAG + ident.encode() + b"\x00"


def code_bytes(fn: Any, meta: Any) -> tuple[Any, bytes]:
    """``(fingerprint, CODE_PREFIX + digest)`` when the task's code is part of its identity, else ``(None, b"")``."""
    track = meta.code_changes == "track" if meta.code_changes is not None else current_session().code_changes_tracked()
    if not track:
        return None, b""
    fp = function_fingerprint(fn)
    return fp, (CODE_PREFIX + fp.digest.encode() if fp is not None else b"")


def function_identity(fn: Any, meta: Any, fn_name: str) -> tuple[bytes, Any, bytes]:
    """``(head, fingerprint, code bytes)`` of a task function, computed once per function per session (it is
    asked for every task made)."""
    table = current_session().memo("misen.identity.functions", dict)
    try:
        found: tuple[bytes, Any, bytes] = table[fn]
        return found
    except KeyError:
        pass
    except TypeError:  # an unhashable callable
        return (task_head(meta, fn, fn_name), *code_bytes(fn, meta))
    found = table[fn] = (task_head(meta, fn, fn_name), *code_bytes(fn, meta))
    return found


def code_digest(fp_bytes: bytes) -> str | None:
    """The fingerprint digest inside a task's code bytes (``None`` when code is not tracked)."""
    return fp_bytes[len(CODE_PREFIX) :].decode() if fp_bytes else None


def identity_digests(head: bytes, fp_bytes: bytes, parts: list[Any]) -> tuple[bytes, bytes]:
    """``(key, hash)`` of a task from its head, code bytes and encoded arguments."""
    key = digest_bytes(head + joined(parts, "_key_bytes"))
    ident = digest_bytes(head + fp_bytes + b"\x00" + joined(parts, "_id_bytes"))
    return key, ident


def resolved_digest(head: bytes, fp_bytes: bytes, parts: list[Any], dependency_hashes: Mapping[bytes, str]) -> str:
    """The identity with each nested task replaced by the hash of its result (``dependency_hashes`` keyed by
    ``_id_bytes``): equal resolved hashes mean equal inputs (early cutoff)."""
    body = b"".join(
        [p if type(p) is bytes else b"R" + dependency_hashes[p._id_bytes].encode() + b";" for p in parts]
    )
    return digest(RESOLVED_TAG + head + fp_bytes + b"\x00" + body)


def arguments_check(parts: list[Any]) -> bytes:
    """A digest of encoded arguments alone: kept for tasks holding mutable values, compared before they run."""
    return digest_bytes(joined(parts, "_id_bytes"))
