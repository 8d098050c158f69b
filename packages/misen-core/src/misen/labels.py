"""Sibling-distinguishing task labels: ``evaluate[c=0.3, gamma=0.01]`` rather than a hash.

A task's label is its function's name followed by the arguments that differ between it and the other tasks of
the same function in the same collection, upstream arguments (those of the tasks it takes as arguments)
included. Values are never cut inside a token: a value too long to show is replaced by ``…`` whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from misen.tasks import RuntimeArgument, Task

__all__ = ["task_labels"]

_MAX_VALUE = 40


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_VALUE else "…"


def _params(task: Task[Any], memo: dict[bytes, dict[str, str]]) -> dict[str, str]:
    """Shown argument values of ``task`` and, for names it does not have itself, of the tasks it takes."""
    hit = memo.get(task._id_bytes)
    if hit is not None:
        return hit
    own: dict[str, str] = {}
    upstream: dict[str, str] = {}
    for name, value in task.arguments.items():
        if type(value) is Task:
            for k, v in _params(value, memo).items():
                upstream.setdefault(k, v)
        elif type(value) is not RuntimeArgument and not _holds_task(value):
            own[name] = _shown(value)
    out = {**upstream, **own}
    memo[task._id_bytes] = out
    return out


def _holds_task(value: Any) -> bool:
    tp = type(value)
    if tp in (list, tuple, set, frozenset):
        return any(_holds_task(v) for v in value)
    if tp is dict:
        return any(_holds_task(v) for v in value.values())
    return tp is Task


def task_labels(tasks: Iterable[Task[Any]]) -> dict[str, str]:
    """A label for every task, keyed by ``task.hash``, that tells it from its siblings.

    Siblings are the tasks of the same function among ``tasks``; a function with one task is labelled by its
    name alone (its ``__name__``, without the enclosing classes or functions). Two siblings that differ only in arguments that cannot be shown get the start of their hash.
    """
    memo: dict[bytes, dict[str, str]] = {}
    groups: dict[str, list[Task[Any]]] = {}
    for task in tasks:
        groups.setdefault(task.name, []).append(task)
    labels: dict[str, str] = {}
    for qualname, group in groups.items():
        name = qualname.rsplit(".", 1)[-1]  # `evaluate`, also for a function defined inside another
        unique = list({t._id_bytes: t for t in group}.values())
        if len(unique) == 1:
            labels[unique[0].hash] = name
            continue
        params = [_params(t, memo) for t in unique]
        keys: list[str] = []
        for p in params:
            keys.extend(k for k in p if k not in keys)
        differing = [k for k in keys if len({p.get(k, "∅") for p in params}) > 1]
        seen: dict[str, int] = {}
        for task, p in zip(unique, params, strict=True):
            parts = [f"{k}={p[k]}" for k in differing if k in p]
            label = f"{name}[{', '.join(parts)}]" if parts else name
            seen[label] = seen.get(label, 0) + 1
            labels[task.hash] = label
        for task in unique:
            if seen[labels[task.hash]] > 1:
                labels[task.hash] = f"{labels[task.hash]}#{task.hash[:8]}"
    return labels
