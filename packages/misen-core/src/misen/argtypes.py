"""Checking a task's plain argument values against the function's annotations when the `Task` is made.

``Task(train, lr="fast", dim=3)`` for ``lr: float`` is a mistake that would otherwise surface (or not) only when
the task runs, and would give the mistaken call an identity and a cache entry. The check is deliberately narrow: a
plain value (``bool``, ``int``, ``float``, ``str``, ``bytes``, ``None``) is checked against an annotation made of
scalars, paths, enums, ``Literal``, ``None``, unions of these and containers (a plain value is never a list). Tasks, runtime markers (``WORK_DIR``) and other objects are not plain
values and are not checked, and neither is anything whose annotation is outside that list or cannot be resolved.
"""

from __future__ import annotations

import enum
import functools
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

from misen.errors import MisenError

__all__ = ["TaskArgumentError", "check_arguments"]


class TaskArgumentError(MisenError, TypeError):
    """A task argument's value does not match the function's annotation."""


_PLAIN = frozenset({bool, int, float, str, bytes, type(None)})
_UNKNOWN = object()


@functools.cache
def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    raw = getattr(fn, "__annotations__", None) or {}
    out: dict[str, Any] = {}
    namespace = getattr(fn, "__globals__", {})
    for name, annotation in raw.items():
        if name == "return":
            continue
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, dict(namespace))
            except Exception:
                continue  # e.g. a name imported under TYPE_CHECKING: not checked
        out[name] = annotation
    return out


#: The plain types a simple annotation accepts: checked with one set lookup (`Task` creation is a hot path).
_SIMPLE: Mapping[Any, frozenset[type]] = types.MappingProxyType(
    {
        float: frozenset({int, float}),
        int: frozenset({int}),
        bool: frozenset({bool}),
        str: frozenset({str}),
        bytes: frozenset({bytes}),
        complex: frozenset({int, float, complex}),
    }
)


@functools.cache
def _fast(fn: Callable[..., Any]) -> dict[str, Any]:
    """``{parameter: accepted plain types, or the annotation to check with _fits}`` for ``fn``."""
    found: dict[str, Any] = {}
    for name, tp in _hints(fn).items():
        try:
            simple = _SIMPLE.get(tp)
        except TypeError:  # an unhashable annotation
            simple = None
        if simple is None and typing.get_origin(tp) in (typing.Union, types.UnionType):
            parts = [_SIMPLE.get(a) if a is not type(None) else frozenset({type(None)}) for a in typing.get_args(tp)]
            if all(p is not None for p in parts):
                simple = frozenset().union(*parts)  # type: ignore[arg-type]
        found[name] = simple if simple is not None else tp
    return found


def check_arguments(fn: Callable[..., Any], arguments: dict[str, Any]) -> None:
    """Raise `TaskArgumentError` for the first plain argument value that contradicts its annotation."""
    try:
        plan = _fast(fn)
    except TypeError:  # an unhashable callable: not checked
        return
    if not plan:
        return
    for name, value in arguments.items():
        kind = type(value)
        if kind not in _PLAIN:
            continue  # only plain values are checked: objects and containers go to their hashers as they are
        tp = plan.get(name, _UNKNOWN)
        if tp is _UNKNOWN:
            continue
        if type(tp) is frozenset:
            if kind in tp:
                continue
            tp = _hints(fn)[name]
        elif _fits(value, tp):
            continue
        fn_name = getattr(fn, "__qualname__", None) or repr(fn)
        raise TaskArgumentError(
            f"Task({fn_name}): argument {name!r} must be {type_name(tp)}, got {value!r} ({type(value).__name__})"
        )


def _fits(value: Any, tp: Any) -> bool:
    if tp is Any or tp is object:
        return True
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _fits(value, args[0])
    if origin is typing.Union or origin is types.UnionType:
        return any(_fits(value, a) for a in args)
    if origin is typing.Literal:
        return any(type(a) is type(value) and a == value for a in args) or isinstance(value, enum.Enum)
    if tp is None or tp is type(None):
        return value is None
    if origin in (list, tuple, set, frozenset, dict) or tp in (list, tuple, set, frozenset, dict):
        return _fits_container(value, origin or tp, args)
    if not isinstance(tp, type):
        return True  # a TypeVar, a Protocol, a string we could not resolve: not checked
    if tp is float:
        return _number(value) or _foreign_scalar(value)
    if tp is int:
        return (isinstance(value, int) and not isinstance(value, bool)) or _foreign_scalar(value)
    if tp is bool:
        return isinstance(value, bool) or _foreign_scalar(value)
    if tp in (str, bytes):
        return isinstance(value, tp)
    if tp is complex:
        return _number(value) or isinstance(value, complex) or _foreign_scalar(value)
    if issubclass(tp, PurePath):
        return isinstance(value, (str, PurePath))
    if issubclass(tp, enum.Enum):
        return isinstance(value, tp)
    return True  # any other class: checked by its hasher when the task is hashed


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _foreign_scalar(value: Any) -> bool:
    # NumPy (and similar) scalars: the type is not a Python number, but the value is one.
    return getattr(value, "ndim", None) == 0 and not isinstance(value, (str, bytes))


def _fits_container(value: Any, container: Any, args: tuple[Any, ...]) -> bool:
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return False
    if container is dict:
        if not isinstance(value, dict):
            return True  # a mapping of another kind: not checked
        kt, vt = args if len(args) == 2 else (Any, Any)
        return all(_fits(k, kt) and _fits(v, vt) for k, v in value.items())
    if not isinstance(value, (list, tuple, set, frozenset)):
        return True  # an array or another sequence type: not checked here
    if container is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args, strict=True))
    elem = args[0] if args else Any
    return all(_fits(v, elem) for v in value)


def type_name(tp: Any) -> str:
    """A short readable name of a type annotation (``list[float]``, ``int | None``, ``Literal['a', 'b']``)."""
    if tp is Any:
        return "Any"
    if tp is None or tp is type(None):
        return "None"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(type_name(a) for a in args)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is not None and args:
        name = getattr(origin, "__name__", None) or repr(origin).replace("typing.", "")
        return f"{name}[{', '.join('...' if a is Ellipsis else type_name(a) for a in args)}]"
    if isinstance(tp, type):
        return tp.__qualname__
    return repr(tp).replace("typing.", "")
