"""`Task`: a lazy, immutable handle to one call of a task function (its identity is `misen.identity`'s)."""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

from misen import cache, identity
from misen._pickling import function_reference, resolve_function
from misen.argtypes import check_arguments
from misen.errors import (
    MisenError,
    MissingIdError,
    NotCachedError,
    ResultCorruptedError,
    TaskFailedError,
    UnhashableArgumentError,
)
from misen.identity import ASSIGNED_RESOURCES, ASSIGNED_RESOURCES_PER_NODE, WORK_DIR, RuntimeArgument
from misen.resources import AssignedResources, Resources
from misen.session import Session, current_session
from misen.taskmeta import TaskMeta, get_meta, signature_of
from misen.workspace import Workspace, resolve_workspace

__all__ = [
    "ASSIGNED_RESOURCES",
    "ASSIGNED_RESOURCES_PER_NODE",
    "WORK_DIR",
    "RuntimeArgument",
    "Task",
    "call_task",
    "iter_graph",
    "runtime_values",
    "signature_of",
    "substitute",
    "task_result",
]

R = TypeVar("R")


def _fn_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def _bind(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    sig = signature_of(fn)
    bound: dict[str, Any] = {}
    if args:
        if len(args) > len(sig.positional):
            if sig.var_positional is None:
                raise TypeError(
                    f"Task({_fn_name(fn)}): takes {len(sig.positional)} positional argument(s) but {len(args)} were given"
                )
            bound[sig.var_positional] = tuple(args[len(sig.positional) :])
        for name, value in zip(sig.positional, args, strict=False):
            bound[name] = value
    for name, value in kwargs.items():
        if name in bound:
            raise TypeError(f"Task({_fn_name(fn)}): got multiple values for argument {name!r}")
        if name not in sig.defaults and name not in sig.names and sig.var_keyword is None:
            raise TypeError(f"Task({_fn_name(fn)}): got an unexpected argument {name!r}")
        bound[name] = value
    for name in sig.names:
        if name not in bound:
            if name in sig.defaults:
                bound[name] = sig.defaults[name]
            else:
                raise TypeError(f"Task({_fn_name(fn)}): missing a value for argument {name!r}")
    return bound


_SCALARS = frozenset({int, float, str, bool, type(None), bytes, complex})


class Task(Generic[R]):
    """A lazy handle to one call ``fn(*args, **kwargs)`` of a task function: an immutable value.

    Nothing runs when a task is made. Tasks compose by passing tasks as arguments, directly or nested in lists,
    tuples, dicts, sets, dataclass and attrs instances. The arguments are copied into a read-only form when the
    task is made (`arguments`), and the identity (`hash`) is computed once from them: a digest of the ``@meta``
    id, the bound arguments (after ``exclude``, ``defaults`` and ``versions``) and, unless turned off, a
    fingerprint of the code it reaches (see `misen.identity`).
    """

    __misen_task__ = True
    __slots__ = (
        "_args",
        "_check",
        "_deps",
        "_fingerprint",
        "_fn",
        "_fp_bytes",
        "_head",
        "_id_bytes",
        "_key_bytes",
        "_meta",
        "_missing_id",
        "_plain",
    )

    def __init__(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> None:
        if not callable(fn):
            raise MisenError(f"Task(...) needs a function as its first argument, got {type(fn).__name__}")
        meta = get_meta(fn)
        name = _fn_name(fn)
        frozen: dict[str, Any] = {}
        deps: list[Task[Any]] = []
        mutable = False
        for key, value in _bind(fn, args, kwargs).items():
            tp = type(value)
            if tp in _SCALARS:
                frozen[key] = value
            elif tp is Task:
                frozen[key] = value
                deps.append(value)
            else:
                frozen[key], found, kept_mutable = identity.freeze(value, Task, f"argument {key!r} of task {name}")
                deps.extend(found)
                mutable = mutable or kept_mutable
        check_arguments(fn, frozen)  # misen.argtypes: a plain value contradicting its annotation fails here
        parts = identity.encode_arguments(meta, frozen, name)
        if deps or mutable:
            walked = {id(t) for t in deps}
            hidden = [p for p in parts if type(p) is not bytes and id(p) not in walked]
            if hidden:
                raise UnhashableArgumentError(
                    f"Task({name}): an argument holds {hidden[0]!r} inside a value misen does not look into; tasks "
                    "may be nested in lists, tuples, dicts, sets, dataclass and attrs instances"
                )
        head, fingerprint, fp_bytes = identity.function_identity(fn, meta, name)
        key_bytes, id_bytes = identity.identity_digests(head, fp_bytes, parts)
        self._fn = fn
        self._meta = meta
        self._args = frozen
        self._deps = tuple({id(t): t for t in deps}.values()) if deps else ()
        self._missing_id = meta.id is None
        self._fingerprint = fingerprint
        self._fp_bytes = fp_bytes
        self._head = head
        self._key_bytes = key_bytes
        self._id_bytes = id_bytes
        self._check = identity.arguments_check(parts) if mutable else None
        # Encoded arguments without a task or a mutable value inside cannot change: kept (joined, one bytes object)
        # for `resolved_hash`, which would otherwise encode them again when the task runs.
        self._plain = b"".join(parts) if not deps and not mutable else None

    @property
    def fn(self) -> Callable[..., R]:
        """The task function."""
        return self._fn

    @property
    def meta(self) -> TaskMeta:
        """What ``@meta`` declared on the function."""
        return self._meta

    def __copy__(self) -> Task[R]:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Task[R]:
        return self

    @property
    def arguments(self) -> Mapping[str, Any]:
        """The bound arguments, read-only (lists, dicts and sets in their frozen forms; see `misen.identity`)."""
        return types.MappingProxyType(self._args)

    def _parts(self) -> list[Any]:
        return identity.encode_arguments(self.meta, self._args, self.name)

    def verify_unchanged(self) -> None:
        """Raise `misen.errors.MisenError` if a mutable value inside the arguments (a non-frozen dataclass, an
        array) was changed after the task was made: its identity no longer says what it would compute."""
        if self._check is not None and identity.arguments_check(self._parts()) != self._check:
            raise MisenError(
                f"{self!r}: a value inside its arguments was changed after the task was made, so its identity no "
                "longer matches what it would compute; make a new Task with the new value instead"
            )

    def resolved_hash(self, dependency_hashes: dict[bytes, str]) -> str:
        """The identity with each nested task replaced by ``dependency_hashes[task._id_bytes]`` (result hashes).

        Equal resolved hashes mean equal inputs, so a recomputed dependency that returned an identical value
        leaves its dependents' resolved hashes, and so their results, unchanged (early cutoff).
        """
        parts = [self._plain] if self._plain is not None else self._parts()
        return identity.resolved_digest(self._head, self._fp_bytes, parts, dependency_hashes)

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
        spec = self.meta.resources
        if spec is None:
            return _no_resources()  # the common case: nothing declared (one frozen value for every task)
        where = f"resources of task {self.name}"
        if callable(spec):
            try:
                spec = spec(**{k: identity.materialize(v, Task, None) for k, v in self._args.items()})
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
        return (
            _rebuild_task,
            (
                function_reference(self.fn),
                self._args,
                self._id_bytes,
                self._key_bytes,
                self._missing_id,
                self._fp_bytes,
                self._check,
            ),
        )

    # --- workspace queries (lazy facades over `misen.cache`, through the current session) -------------------

    def result(self, workspace: Workspace | str | None = None, *, compute: bool = True) -> R:
        """The task's result: loaded if cached, else computed first (what it needs runs with the configured
        executor; a non-cacheable task itself is computed here). ``compute=False`` raises
        `misen.errors.NotCachedError` instead of computing."""
        return task_result(self, workspace, compute=compute)  # type: ignore[no-any-return]

    def is_cached(self, workspace: Workspace | str | None = None) -> bool:
        """Whether the workspace holds an intact-looking result for this task (``False`` if not cacheable)."""
        self.check_ids()
        return cache.is_cached(resolve_workspace(workspace), self)

    def done(self, workspace: Workspace | str | None = None) -> bool:
        """Whether this task needs no more work: cached, or (not cacheable) all its dependencies done."""
        self.check_ids()
        return cache.done(resolve_workspace(workspace), self)

    def is_running(self, workspace: Workspace | str | None = None) -> bool:
        """Whether a process currently holds this task's lock in the workspace."""
        return resolve_workspace(workspace).lock_holder(self.hash) is not None

    def work_dir(self, workspace: Workspace | str | None = None) -> Path:
        """The task's persistent scratch directory in the workspace (what ``WORK_DIR`` becomes)."""
        return resolve_workspace(workspace).work_dir(self.hash)


def _short(v: Any) -> str:
    if type(v) is Task:
        return f"<{v.name}>"
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _rebuild_task(
    fnref: Any,
    arguments: dict[str, Any],
    id_bytes: bytes,
    key_bytes: bytes,
    missing: bool,
    fp_bytes: bytes = b"",
    check: bytes | None = None,
) -> Task[Any]:
    fn = resolve_function(fnref)
    task = Task.__new__(Task)
    deps: list[Task[Any]] = []
    for value in arguments.values():
        identity.collect_tasks(value, Task, deps)
    task._fn = fn
    task._meta = meta = get_meta(fn)
    task._args = arguments
    task._deps = tuple({id(t): t for t in deps}.values()) if deps else ()
    task._missing_id = missing
    task._fingerprint = None
    task._fp_bytes = fp_bytes
    task._head = identity.task_head(meta, fn, _fn_name(fn))
    task._key_bytes = key_bytes
    task._id_bytes = id_bytes
    task._check = check
    task._plain = None
    return task


def substitute(value: Any, results: Mapping[bytes, Any]) -> Any:
    """A fresh, ordinary copy of an argument value with every task inside replaced by its result (``results``
    keyed by ``_id_bytes``)."""
    return identity.materialize(value, Task, results)


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


def task_result(
    task: Task[Any], workspace: Workspace | str | None = None, *, compute: bool = True, session: Session | None = None
) -> Any:
    """The result of ``task``.

    A cached result is loaded. Otherwise, with ``compute`` (the default), what the task needs is run first with
    the configured executor (the in-process one for a workspace that lives in this process only), as anyone who
    installed a project expects from ``TrainingSweep()["plot"].result()``; a failure raises
    `misen.errors.TaskFailedError` naming the task, its error and its log. With ``compute=False`` a missing result
    raises `misen.errors.NotCachedError` (a damaged one `misen.errors.ResultCorruptedError`, naming the damage;
    it is dropped, so the next run recomputes it).
    """
    session = session or current_session()
    task.check_ids()
    ws = resolve_workspace(workspace, session)
    if task.cacheable:
        try:
            return cache.load(ws, task)
        except ResultCorruptedError:
            if not compute:
                raise
        except NotCachedError:
            if not compute:
                failure = cache.failure(ws, task)
                if failure is None:
                    extra = "; run it first"
                elif failure.get("status") == "skipped":
                    extra = f"; it was skipped in its last run: {failure.get('error')}"
                else:
                    extra = f"; its last attempt failed: {failure.get('error')}"
                raise NotCachedError(f"{task!r} is not cached in workspace {ws.describe()}{extra}") from None
    if compute:
        missing = [t for t in _cacheable_inputs(task) if not cache.is_cached(ws, t)]
        if missing:
            report = session.hook.misen_compute(tasks=missing, workspace=ws, session=session)
            if report is None:
                raise MisenError(f"{task!r} is not cached and no plugin computes results (misen_compute)")
            if not report.ok:
                unit, outcome = report.failed[0]
                where = f" (log: {outcome.log})" if outcome.log else ""
                raise TaskFailedError(
                    f"{task!r} could not be computed: {unit.label} ended {outcome.status}: {outcome.error}{where}"
                )
        if task.cacheable:
            return cache.load(ws, task)

    values: dict[bytes, Any] = {}

    def compute_value(t: Task[Any]) -> None:
        if t._id_bytes in values:
            return
        if t.cacheable:
            values[t._id_bytes] = task_result(t, ws, compute=False, session=session)
            return
        for dep in t.dependencies:
            compute_value(dep)
        values[t._id_bytes] = call_task(t, values, runtime_values(t, ws, None))

    compute_value(task)
    return values[task._id_bytes]




def _cacheable_inputs(task: Task[Any]) -> list[Task[Any]]:
    """The task itself if cacheable, else the cacheable tasks it reaches through non-cacheable ones."""
    if task.cacheable:
        return [task]
    out: dict[bytes, Task[Any]] = {}
    stack = [task]
    seen: set[bytes] = set()
    while stack:
        t = stack.pop()
        for dep in t.dependencies:
            if dep._id_bytes in seen:
                continue
            seen.add(dep._id_bytes)
            if dep.cacheable:
                out[dep._id_bytes] = dep
            else:
                stack.append(dep)
    return list(out.values())


def call_task(task: Task[Any], values: dict[bytes, Any], runtime: dict[str, Any]) -> Any:
    """Call the task's function with fresh copies of its arguments, dependencies and run-time markers
    replaced by their values."""
    task.verify_unchanged()
    sig = signature_of(task.fn)
    args = {}
    for name, value in task.arguments.items():
        if type(value) is RuntimeArgument:
            value = runtime[value.name]
        else:
            value = substitute(value, values)
        args[name] = value
    positional = [args.pop(n) for n in sig.positional if n in args]
    if sig.var_positional and sig.var_positional in args:
        positional.extend(args.pop(sig.var_positional))
    return task.fn(*positional, **args)




def runtime_values(task: Task[Any], ws: Workspace, assigned: AssignedResources | None) -> dict[str, Any]:
    runtime: dict[str, Any] = {}
    for value in task.arguments.values():
        if type(value) is Task:
            continue
        if value is WORK_DIR:
            runtime["WORK_DIR"] = ws.work_dir(task.hash, persistent=task.cacheable)
        elif value is ASSIGNED_RESOURCES or value is ASSIGNED_RESOURCES_PER_NODE:
            res = assigned or AssignedResources.from_process(task.resources.gpu_runtime)
            runtime["ASSIGNED_RESOURCES"] = res
            runtime["ASSIGNED_RESOURCES_PER_NODE"] = [res]
    return runtime


@functools.cache
def _no_resources() -> Resources:
    return Resources()
