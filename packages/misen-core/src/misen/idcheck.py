"""Two task functions must never share an ``@meta`` id: their results would overwrite each other's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from misen.errors import MisenError
from misen.tasks import Task, iter_graph

__all__ = ["DuplicateIdError", "check_unique_ids"]


class DuplicateIdError(MisenError):
    """Two different task functions in one workflow have the same ``@meta`` id."""


def _where(fn: Any) -> str:
    code = getattr(fn, "__code__", None)
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    return f"{name} ({code.co_filename}:{code.co_firstlineno})" if code is not None else name


def _origin(fn: Any) -> tuple[str, str]:
    return getattr(fn, "__module__", ""), getattr(fn, "__qualname__", repr(fn))


def check_unique_ids(roots: Iterable[Task[Any]]) -> None:
    """Raise `DuplicateIdError` when two functions reached from ``roots`` carry the same id."""
    owners: dict[str, Any] = {}
    seen_fns: set[int] = set()
    for task in iter_graph(list(roots)):
        fn = task.fn
        if id(fn) in seen_fns or task.meta.id is None:
            continue
        seen_fns.add(id(fn))
        other = owners.setdefault(task.meta.id, fn)
        if other is not fn and _origin(other) != _origin(fn):
            raise DuplicateIdError(
                f"task functions {_where(other)} and {_where(fn)} have the same @meta id {task.meta.id!r}; "
                f"give one a fresh id: misen fill --renew {getattr(fn, '__name__', 'NAME')}"
            )
