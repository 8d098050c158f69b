"""The ``@meta`` decorator: a task function's id, caching switch and identity rules."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar, overload

import attrs

from misen.errors import MisenError
from misen.resources import Resources

__all__ = ["TaskMeta", "get_meta", "meta", "signature_of"]

F = TypeVar("F", bound=Callable[..., Any])

CODE_CHANGE_MODES = ("track", "ignore")


@attrs.frozen
class TaskMeta:
    """What ``@meta`` records on a function (as ``fn.__misen_meta__``)."""

    id: str | None = None
    cache: bool = False
    versions: Mapping[str, Mapping[Any, int]] = attrs.field(factory=dict)
    defaults: Mapping[str, Any] = attrs.field(factory=dict)
    exclude: frozenset[str] = frozenset()
    serializer: Any = None
    resources: Any = None
    code_changes: str | None = None
    #: The native environment (a ``pixi.lock`` environment name, or ``"none"``); ``None``: ``[environment] name``.
    environment: str | None = None
    retries: int = 0


_DEFAULT_META = TaskMeta()


def _where(fn: Callable[..., Any]) -> str:
    code = getattr(fn, "__code__", None)
    name = getattr(fn, "__qualname__", repr(fn))
    if code is None:
        return name
    return f"{name} ({code.co_filename}:{code.co_firstlineno})"


@overload
def meta(fn: F, /) -> F: ...
@overload
def meta(
    fn: None = None,
    /,
    *,
    id: str | None = None,
    cache: bool = False,
    versions: Mapping[str, Mapping[Any, int]] | None = None,
    defaults: Mapping[str, Any] | None = None,
    exclude: set[str] | frozenset[str] | list[str] | tuple[str, ...] | None = None,
    serializer: Any = None,
    resources: Any = None,
    code_changes: str | None = None,
    environment: str | None = None,
    retries: int = 0,
) -> Callable[[F], F]: ...


def meta(
    fn: Any = None,
    /,
    *,
    id: str | None = None,
    cache: bool = False,
    versions: Mapping[str, Mapping[Any, int]] | None = None,
    defaults: Mapping[str, Any] | None = None,
    exclude: set[str] | frozenset[str] | list[str] | tuple[str, ...] | None = None,
    serializer: Any = None,
    resources: Any = None,
    code_changes: str | None = None,
    environment: str | None = None,
    retries: int = 0,
) -> Any:
    """Mark a function as a misen task.

    Args:
        id: The task's stable identifier; ``misen fill`` writes a fresh random one. A new id is a new task.
        cache: Persist results in the workspace, keyed by the task's identity.
        versions: ``{argument: {value: version}}``: bumps the identity of calls with that argument value.
        defaults: ``{argument: value}``: a bound argument equal to this value is left out of the identity, so
            adding a parameter with a default keeps existing results.
        exclude: argument names left out of the identity.
        serializer: a `misen.Serializer` subclass or instance used for this task's results.
        resources: a dict of `misen.Resources` fields, or a callable of the task's arguments returning one.
        code_changes: ``"track"`` (include a fingerprint of the code in the identity) or ``"ignore"`` (identity
            is the id and arguments only); ``None`` follows ``[cache] code_changes`` in ``.misen.toml``.
        environment: the native environment the task runs in: an environment of the project's ``pixi.lock``
            (``"cuda"``), or ``"none"``; ``None`` uses ``[environment] name``. Not part of the identity.
        retries: how many times a call that raises is made again before the task counts as failed (for flaky
            tasks); ``run --retries N`` overrides it for a run. The attempts are recorded in the provenance.

    The function itself is returned unchanged, so it can still be called directly.
    """

    def decorate(func: F) -> F:
        if not callable(func):
            raise MisenError(f"@meta must decorate a function, got {type(func).__name__}")
        if id is not None and (not isinstance(id, str) or not id.strip()):
            raise MisenError(f"@meta(id=...) of {_where(func)} must be a non-empty string, got {id!r}")
        if code_changes not in (None, *CODE_CHANGE_MODES):
            raise MisenError(
                f"@meta(code_changes=...) of {_where(func)} must be one of {CODE_CHANGE_MODES}, got {code_changes!r}"
            )
        if environment is not None and (not isinstance(environment, str) or not environment.strip()):
            raise MisenError(
                f"@meta(environment=...) of {_where(func)} must be a non-empty string, got {environment!r}"
            )
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise MisenError(f"@meta(retries=...) of {_where(func)} must be a whole number >= 0, got {retries!r}")
        try:
            params = set(inspect.signature(func).parameters)
            has_var_kw = any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(func).parameters.values()
            )
        except (TypeError, ValueError):
            params, has_var_kw = set(), True
        excl = frozenset(exclude or ())
        vers = {k: dict(v) for k, v in (versions or {}).items()}
        dfl = dict(defaults or {})
        for label, names in (("exclude", excl), ("versions", vers), ("defaults", dfl)):
            unknown = sorted(set(names) - params)
            if unknown and not has_var_kw:
                raise MisenError(
                    f"@meta({label}=...) of {_where(func)} names argument(s) {', '.join(map(repr, unknown))} "
                    f"that the function does not take"
                )
        for name, table in vers.items():
            if not isinstance(table, Mapping):
                raise MisenError(f"@meta(versions=...) of {_where(func)}: versions[{name!r}] must be a dict of value -> int")
            for value, ver in table.items():
                if not isinstance(value, Hashable) or not isinstance(ver, int):
                    raise MisenError(
                        f"@meta(versions=...) of {_where(func)}: versions[{name!r}][{value!r}] must map a value to an int"
                    )
        if resources is not None and not callable(resources):
            try:
                Resources.coerce(resources, where=f"@meta(resources=...) of {_where(func)}")
            except (TypeError, ValueError) as exc:
                raise MisenError(str(exc)) from None
        func.__misen_meta__ = TaskMeta(  # type: ignore[attr-defined]
            id=id,
            cache=bool(cache),
            versions=vers,
            defaults=dfl,
            exclude=excl,
            serializer=serializer,
            resources=resources,
            code_changes=code_changes,
            environment=environment,
            retries=retries,
        )
        return func

    if fn is not None:
        return decorate(fn)
    return decorate


def get_meta(fn: Callable[..., Any]) -> TaskMeta:
    """The `TaskMeta` of ``fn``; functions without ``@meta`` get the defaults (no id, not cached)."""
    return getattr(fn, "__misen_meta__", _DEFAULT_META)


class _Signature:
    """What binding needs from a function's signature (computed once per function object)."""

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


@functools.lru_cache(maxsize=4096)
def signature_of(fn: Callable[..., Any]) -> _Signature:
    """How ``fn`` binds its arguments (a pure cache keyed by the function object)."""
    return _Signature(fn)
