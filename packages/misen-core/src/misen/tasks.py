"""`Task`: a lazy, hashable handle to one call of a task function, and the run-time argument markers."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from misen import hashing
from misen.errors import MisenError, MissingIdError
from misen.taskmeta import TaskMeta, get_meta

if TYPE_CHECKING:
    from misen.resources import Resources
    from misen.workspace import Workspace

__all__ = [
    "ASSIGNED_RESOURCES",
    "ASSIGNED_RESOURCES_PER_NODE",
    "WORK_DIR",
    "RuntimeArgument",
    "Task",
    "iter_graph",
]

R = TypeVar("R")


class RuntimeArgument:
    """A marker passed as an argument value that the executor replaces when the task runs.

    Runtime arguments never enter a task's identity.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self) -> tuple[Any, ...]:
        return (_runtime_argument, (self.name,))


#: A per-task scratch directory (`pathlib.Path`): persistent for ``cache=True`` tasks, ephemeral otherwise.
WORK_DIR: Any = RuntimeArgument("WORK_DIR")
#: The resources bound to the task process: an object with ``cpus`` and ``gpus`` index lists.
ASSIGNED_RESOURCES: Any = RuntimeArgument("ASSIGNED_RESOURCES")
#: One such object per node of a multi-node task.
ASSIGNED_RESOURCES_PER_NODE: Any = RuntimeArgument("ASSIGNED_RESOURCES_PER_NODE")

_RUNTIME = {r.name: r for r in (WORK_DIR, ASSIGNED_RESOURCES, ASSIGNED_RESOURCES_PER_NODE)}


def _runtime_argument(name: str) -> RuntimeArgument:
    return _RUNTIME[name]


class _Signature:
    """What binding needs from a function's signature, computed once per function."""

    __slots__ = ("defaults", "names", "positional", "var_keyword", "var_positional")

    def __init__(self, fn: Callable[..., Any]) -> None:
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError) as exc:
            raise MisenError(f"cannot make a task of {fn!r}: its signature is not introspectable") from exc
        self.names: list[str] = []
        self.positional: list[str] = []
        self.defaults: dict[str, Any] = {}
        self.var_positional: str | None = None
        self.var_keyword: str | None = None
        for p in params:
            if p.kind is p.VAR_POSITIONAL:
                self.var_positional = p.name
                continue
            if p.kind is p.VAR_KEYWORD:
                self.var_keyword = p.name
                continue
            self.names.append(p.name)
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                self.positional.append(p.name)
            if p.default is not p.empty:
                self.defaults[p.name] = p.default


_SIGNATURES: dict[Any, _Signature] = {}


def _signature(fn: Callable[..., Any]) -> _Signature:
    sig = _SIGNATURES.get(fn)
    if sig is None:
        sig = _SIGNATURES[fn] = _Signature(fn)
    return sig


def _fn_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


_FROZEN_SCALARS = frozenset({int, float, str, bool, type(None), bytes, complex})


def _copy_containers(v: Any) -> Any:
    # Arguments are copied structurally so that mutating a list after `Task(...)` cannot change the task
    # (and cannot build a cycle).
    tp = type(v)
    if tp in _FROZEN_SCALARS:
        return v
    if tp is list:
        return [_copy_containers(x) for x in v]
    if tp is dict:
        return {k: _copy_containers(x) for k, x in v.items()}
    if tp is tuple:
        return tuple(_copy_containers(x) for x in v)
    if tp is set:
        return {_copy_containers(x) for x in v}
    return v


_TASK_TAG = b"misen.task/1\x00"
_FINGERPRINTS: dict[Any, tuple[Any, bytes]] = {}


def _fingerprint_of(fn: Callable[..., Any]) -> tuple[Any, bytes]:
    from misen.fingerprint import function_fingerprint

    fp = function_fingerprint(fn)
    return fp, (b"code:" + fp.digest.encode() if fp is not None else b"")
_config_cache: dict[str, Any] = {}


def _track_code_default() -> bool:
    value = _config_cache.get("code_changes")
    if value is None:
        try:
            from misen.settings import load_settings

            value = load_settings().cache.code_changes
        except Exception:  # a broken config is reported where configuration is used, not while hashing
            value = "track"
        _config_cache["code_changes"] = value
    return value == "track"


class Task(Generic[R]):
    """A lazy handle to one call ``fn(*args, **kwargs)`` of a task function.

    Nothing runs when a task is made. Tasks compose by passing tasks as arguments (directly or inside lists,
    tuples, dicts and sets). Its identity (`hash`) is a digest of the ``@meta`` id, the bound arguments (after
    ``exclude``, ``defaults`` and ``versions``) and, unless turned off, a fingerprint of the code it reaches.
    """

    __slots__ = (
        "_deps",
        "_fingerprint",
        "_fp_bytes",
        "_id_bytes",
        "_key_bytes",
        "_missing_id",
        "arguments",
        "fn",
        "meta",
    )

    fn: Callable[..., R]
    meta: TaskMeta
    arguments: dict[str, Any]

    def __init__(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> None:
        if not callable(fn):
            raise MisenError(f"Task(...) needs a function as its first argument, got {type(fn).__name__}")
        self.fn = fn
        self.meta = get_meta(fn)
        sig = _signature(fn)
        bound: dict[str, Any] = {}
        if args:
            if len(args) > len(sig.positional):
                if sig.var_positional is None:
                    raise TypeError(
                        f"Task({_fn_name(fn)}): takes {len(sig.positional)} positional argument(s) "
                        f"but {len(args)} were given"
                    )
                bound[sig.var_positional] = tuple(args[len(sig.positional) :])
            for name, value in zip(sig.positional, args, strict=False):
                bound[name] = value
        for name, value in kwargs.items():
            if name in bound:
                raise TypeError(f"Task({_fn_name(fn)}): got multiple values for argument {name!r}")
            if name not in sig.defaults and name not in sig.names:
                if sig.var_keyword is None:
                    raise TypeError(f"Task({_fn_name(fn)}): got an unexpected argument {name!r}")
            bound[name] = value
        for name in sig.names:
            if name not in bound:
                if name in sig.defaults:
                    bound[name] = sig.defaults[name]
                else:
                    raise TypeError(f"Task({_fn_name(fn)}): missing a value for argument {name!r}")
        self.arguments = {k: _copy_containers(v) for k, v in bound.items()}
        self._compute_identity()

    def _encode_arguments(self) -> list[Any]:
        fn, m = self.fn, self.meta
        parts: list[Any] = []
        versions = m.versions
        exclude = m.exclude
        defaults = m.defaults
        for name in sorted(self.arguments):
            value = self.arguments[name]
            if name in exclude or type(value) is RuntimeArgument:
                continue
            if name in defaults and _equal(defaults[name], value):
                continue
            nb = name.encode()
            parts.append(b"a%d:" % len(nb) + nb)
            hashing.encode_value(value, parts, what=f"argument {name!r} of task {_fn_name(fn)}")
            if versions and name in versions:
                try:
                    ver = versions[name].get(value)
                except TypeError:
                    ver = None
                if ver is not None:
                    parts.append(b"v%d;" % ver)
        return parts

    def _head(self) -> bytes:
        ident = self.meta.id
        if ident is None:
            ident = f"<no id>{getattr(self.fn, '__module__', '')}.{_fn_name(self.fn)}"
        return _TASK_TAG + ident.encode() + b"\x00"

    def _compute_identity(self) -> None:
        fn, m = self.fn, self.meta
        parts = self._encode_arguments()
        self._deps = tuple(dict.fromkeys(p for p in parts if type(p) is Task))
        self._missing_id = m.id is None
        head = self._head()
        blake = hashing.hashlib.blake2b
        self._key_bytes = blake(head + b"".join([p if type(p) is bytes else p._key_bytes for p in parts]), digest_size=16).digest()
        track = m.code_changes == "track" if m.code_changes is not None else _track_code_default()
        if track:
            cached = _FINGERPRINTS.get(fn)
            if cached is None:
                cached = _FINGERPRINTS[fn] = _fingerprint_of(fn)
            self._fingerprint, self._fp_bytes = cached
        else:
            self._fingerprint, self._fp_bytes = None, b""
        self._id_bytes = blake(
            head + self._fp_bytes + b"\x00" + b"".join([p if type(p) is bytes else p._id_bytes for p in parts]),
            digest_size=16,
        ).digest()

    def resolved_hash(self, dependency_hashes: dict[bytes, str]) -> str:
        """The identity with each nested task replaced by ``dependency_hashes[task._id_bytes]`` (result hashes).

        Equal resolved hashes mean equal inputs, so a recomputed dependency that returned an identical value
        leaves its dependents' resolved hashes, and so their results, unchanged (early cutoff).
        """
        parts = self._encode_arguments()
        body = b"".join(
            [p if type(p) is bytes else b"R" + dependency_hashes[p._id_bytes].encode() + b";" for p in parts]
        )
        return hashing.hashlib.blake2b(b"resolved/" + self._head() + self._fp_bytes + b"\x00" + body, digest_size=16).hexdigest()

    # --- identity -------------------------------------------------------------------------------------------

    @property
    def hash(self) -> str:
        """The task's identity: a hex digest of id, arguments and (by default) code fingerprint."""
        return self._id_bytes.hex()

    @property
    def key_hash(self) -> str:
        """The identity without code fingerprints: equal across edits of the code (finds stale results)."""
        return self._key_bytes.hex()

    @property
    def fingerprint(self) -> Any:
        """The code fingerprint in this task's identity, or ``None`` when code changes are ignored."""
        return self._fingerprint

    @property
    def T(self) -> R:
        """This task, typed as the function's return type, for passing into another `Task`."""
        return self  # type: ignore[return-value]

    @property
    def dependencies(self) -> tuple[Task[Any], ...]:
        """The tasks this task's arguments contain, in argument order, without repeats."""
        return self._deps

    @property
    def name(self) -> str:
        return _fn_name(self.fn)

    @property
    def cacheable(self) -> bool:
        return self.meta.cache

    @property
    def resources(self) -> Resources:
        """The resources declared by ``@meta(resources=...)``, evaluated for this task's arguments."""
        from misen.resources import Resources

        spec = self.meta.resources
        where = f"resources of task {self.name}"
        if callable(spec):
            try:
                spec = spec(**{k: v for k, v in self.arguments.items()})
            except Exception as exc:
                raise MisenError(f"{where}: the resources callable raised {type(exc).__name__}: {exc}") from exc
        return Resources.coerce(spec, where=where)

    def check_ids(self) -> None:
        """Raise `MissingIdError` if this task or any task it depends on has no ``@meta(id=...)``."""
        missing = [t for t in iter_graph([self]) if t._missing_id]
        if missing:
            fn = missing[0].fn
            code = getattr(fn, "__code__", None)
            where = f" ({code.co_filename}:{code.co_firstlineno})" if code else ""
            raise MissingIdError(
                f"task function {_fn_name(fn)}{where} has no @meta(id=...); run `misen fill` to give every task "
                "function a unique id"
            )

    def __eq__(self, other: object) -> bool:
        return type(other) is Task and other._id_bytes == self._id_bytes

    def __hash__(self) -> int:
        return hash(self._id_bytes)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_short(v)}" for k, v in self.arguments.items())
        return f"Task({self.name}, {args})" if args else f"Task({self.name})"

    def __reduce__(self) -> tuple[Any, ...]:
        from misen._pickling import function_reference

        return (
            _rebuild_task,
            (function_reference(self.fn), self.arguments, self._id_bytes, self._key_bytes, self._missing_id, self._fp_bytes),
        )

    # --- workspace queries ----------------------------------------------------------------------------------

    def result(self, workspace: Workspace | str | None = None, *, compute: bool = True) -> R:
        """The task's result: loaded if cached, else computed first (what it needs runs with the configured
        executor; a non-cacheable task itself is computed here). ``compute=False`` raises
        `misen.errors.NotCachedError` instead of computing."""
        from misen.runner import task_result

        return task_result(self, workspace, compute=compute)  # type: ignore[no-any-return]

    def is_cached(self, workspace: Workspace | str | None = None) -> bool:
        """Whether the workspace holds a result for this task (``False`` for non-cacheable tasks)."""
        from misen.runner import resolve_workspace

        self.check_ids()
        return resolve_workspace(workspace).is_cached(self)

    def done(self, workspace: Workspace | str | None = None) -> bool:
        """Whether this task needs no more work: cached, or (not cacheable) all its dependencies done."""
        from misen.runner import resolve_workspace

        self.check_ids()
        ws = resolve_workspace(workspace)
        # Walk the non-cacheable part of the graph once (shared dependencies are checked once, not per path).
        seen: set[bytes] = set()
        stack: list[Task[Any]] = [self]
        while stack:
            task = stack.pop()
            if task._id_bytes in seen:
                continue
            seen.add(task._id_bytes)
            if task.cacheable:
                if not ws.is_cached(task):
                    return False
            else:
                stack.extend(task._deps)
        return True

    def is_running(self, workspace: Workspace | str | None = None) -> bool:
        """Whether a process currently holds this task's lock in the workspace."""
        from misen.runner import resolve_workspace

        return resolve_workspace(workspace).lock_holder(self.hash) is not None

    def work_dir(self, workspace: Workspace | str | None = None) -> Path:
        """The task's persistent scratch directory in the workspace (what ``WORK_DIR`` becomes)."""
        from misen.runner import resolve_workspace

        return resolve_workspace(workspace).work_dir(self.hash)


def _equal(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def _short(v: Any) -> str:
    if type(v) is Task:
        return f"<{v.name}>"
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _rebuild_task(
    fnref: Any, arguments: dict[str, Any], id_bytes: bytes, key_bytes: bytes, missing: bool, fp_bytes: bytes = b""
) -> Task[Any]:
    from misen._pickling import resolve_function

    fn = resolve_function(fnref)
    task = Task.__new__(Task)
    task.fn = fn
    task.meta = get_meta(fn)
    task.arguments = arguments
    task._id_bytes = id_bytes
    task._key_bytes = key_bytes
    task._missing_id = missing
    task._fingerprint = None
    task._fp_bytes = fp_bytes
    deps: list[Task[Any]] = []
    _collect_tasks(arguments, deps)
    task._deps = tuple(dict.fromkeys(deps))
    return task


def _collect_tasks(v: Any, out: list[Task[Any]]) -> None:
    tp = type(v)
    if tp is Task:
        out.append(v)
    elif tp in (list, tuple, set, frozenset):
        for x in v:
            _collect_tasks(x, out)
    elif tp is dict:
        for k, x in v.items():
            _collect_tasks(k, out)
            _collect_tasks(x, out)


def substitute(value: Any, results: dict[bytes, Any]) -> Any:
    """Replace every task inside an argument value by its result (``results`` keyed by ``_id_bytes``)."""
    tp = type(value)
    if tp is Task:
        return results[value._id_bytes]
    if tp in _FROZEN_SCALARS:
        return value
    if tp is list:
        return [substitute(x, results) for x in value]
    if tp is tuple:
        return tuple(substitute(x, results) for x in value)
    if tp is dict:
        return {substitute(k, results): substitute(x, results) for k, x in value.items()}
    if tp is set or tp is frozenset:
        return tp(substitute(x, results) for x in value)
    return value


def iter_graph(roots: Any) -> Iterator[Task[Any]]:
    """Every task reachable from ``roots``, each once, dependencies before dependents."""
    seen: set[bytes] = set()
    for root in roots:
        if root._id_bytes in seen:
            continue
        stack: list[tuple[Task[Any], int]] = [(root, 0)]
        while stack:
            task, i = stack.pop()
            if i < len(task._deps):
                stack.append((task, i + 1))
                dep = task._deps[i]
                if dep._id_bytes not in seen:
                    stack.append((dep, 0))
            elif task._id_bytes not in seen:
                seen.add(task._id_bytes)
                yield task


hashing.register_task_type(Task)
sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
