"""Labels that tell a task from its siblings: ``evaluate[c=0.3, gamma=0.01]`` instead of a long ``repr``.

A sweep makes many tasks of the same function whose own arguments are often only other tasks
(``evaluate(model=<train_svm>)``); what tells them apart is a value further up the graph. `task_labels` collects
for every task the plain argument values it depends on (its own and, through task arguments, its upstream
tasks'), and shows for each function only the names whose values differ between its tasks in the given set.
Values are shown whole or elided at an element boundary, never cut inside a token.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

from misen.identity import FrozenList
from misen.tasks import RuntimeArgument, Task, iter_graph

__all__ = ["describe_value", "graph_labels", "inherited_arguments", "task_labels"]

#: How many elements of a list, tuple, set or dict a label shows before eliding the rest with ``…``.
MAX_ELEMENTS = 4
_MISSING = object()


def describe_value(value: Any, *, top: bool = True) -> str:
    """A short text for an argument value; long containers are elided at an element boundary (``[1, 2, …]``)."""
    if type(value) is Task:
        return f"<{value.fn.__name__ if hasattr(value.fn, '__name__') else value.name}>"
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, str):
        return value if top and value.isidentifier() else repr(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if isinstance(value, (set, frozenset)):
            items = sorted(items, key=repr)
        shown = [describe_value(v, top=False) for v in items[:MAX_ELEMENTS]]
        if len(items) > MAX_ELEMENTS:
            shown.append(f"… {len(items) - MAX_ELEMENTS} more")
        if isinstance(value, FrozenList) or type(value) is list:
            open_, close = "[", "]"  # a list argument is frozen into a FrozenList (a tuple) by Task
        elif isinstance(value, tuple):
            open_, close = "(", ")"
        else:
            open_, close = "{", "}"
        if open_ == "(" and len(items) == 1:
            return f"({shown[0]},)"
        return open_ + ", ".join(shown) + close
    if isinstance(value, dict):
        keys = list(value)
        shown = [
            f"{describe_value(k, top=False)}: {describe_value(value[k], top=False)}" for k in keys[:MAX_ELEMENTS]
        ]
        if len(keys) > MAX_ELEMENTS:
            shown.append(f"… {len(keys) - MAX_ELEMENTS} more")
        return "{" + ", ".join(shown) + "}"
    return repr(value)


def _contains_task(value: Any) -> bool:
    if type(value) is Task:
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_contains_task(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_task(k) or _contains_task(v) for k, v in value.items())
    return False


def _key(value: Any) -> Any:
    """A comparable stand-in for a value: tasks by their identity, everything else by its text."""
    if type(value) is Task:
        return ("task", value.hash)
    if _contains_task(value):
        return ("tasks", repr(sorted(t.hash for t in _tasks_in(value))), len(_tasks_in(value)))
    try:
        return ("value", repr(value))
    except Exception:  # pragma: no cover - a repr that raises
        return ("value", id(value))


def _tasks_in(value: Any) -> list[Task[Any]]:
    out: list[Task[Any]] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if type(v) is Task:
            out.append(v)
        elif isinstance(v, (list, tuple, set, frozenset)):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
    return out


def _shown(value: Any) -> str:
    if type(value) is not Task and _contains_task(value):
        n = len(_tasks_in(value))
        return f"<{n} task{'s' if n != 1 else ''}>"
    return describe_value(value)


def inherited_arguments(task: Task[Any], memo: dict[bytes, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The plain argument values ``task`` depends on: its own, then those of the tasks passed to it directly.

    An argument of an upstream task is known by its name; when two upstream tasks use the same name with
    different values, the later one is known as ``function.name``. Runtime arguments (``WORK_DIR``) are left out;
    a container holding tasks counts as one value (its tasks' arguments are not merged).
    """
    memo = {} if memo is None else memo
    found = memo.get(task._id_bytes)
    if found is not None:
        return found
    out: dict[str, Any] = {}
    upstream: list[Task[Any]] = []
    for name, value in task.arguments.items():
        if type(value) is RuntimeArgument or name in task.meta.exclude:
            continue
        if type(value) is Task:
            upstream.append(value)
            continue
        out[name] = value
    for dep in upstream:
        for name, value in inherited_arguments(dep, memo).items():
            if name not in out:
                out[name] = value
            elif _key(out[name]) != _key(value):
                qualified = name if "." in name else f"{dep.fn.__name__}.{name}"
                out.setdefault(qualified, value)
    memo[task._id_bytes] = out
    return out


def _function_key(task: Task[Any]) -> Any:
    return (getattr(task.fn, "__module__", ""), task.name)


def _base_name(task: Task[Any]) -> str:
    return getattr(task.fn, "__name__", None) or task.name


def task_labels(tasks: Iterable[Task[Any]]) -> dict[str, str]:
    """task.hash -> a label that tells the task from its siblings: `evaluate[c=0.3, gamma=0.01]`.

    The siblings of a task are the tasks of the same function in ``tasks`` (each task counted once). A label shows
    the arguments whose values differ between siblings, including those inherited from upstream tasks; a task
    without siblings is labelled by its function's name alone. Labels are unique within the set: siblings that
    no argument tells apart get a short hash (``evaluate[#3fa2c1]``).
    """
    unique: dict[str, Task[Any]] = {}
    for task in tasks:
        unique.setdefault(task.hash, task)
    memo: dict[bytes, dict[str, Any]] = {}
    groups: dict[Any, list[Task[Any]]] = {}
    for task in unique.values():
        groups.setdefault(_function_key(task), []).append(task)
    labels: dict[str, str] = {}
    for members in groups.values():
        base = _base_name(members[0])
        if len(members) == 1:
            labels[members[0].hash] = base
            continue
        args = {t.hash: inherited_arguments(t, memo) for t in members}
        names: list[str] = []
        for a in args.values():
            names.extend(n for n in a if n not in names)
        differing = [n for n in names if len({_key(a[n]) if n in a else _MISSING for a in args.values()}) > 1]
        for task in members:
            a = args[task.hash]
            shown = [f"{n}={_shown(a[n])}" if n in a else f"{n}=–" for n in differing]
            labels[task.hash] = f"{base}[{', '.join(shown)}]" if shown else base
        _disambiguate(members, labels)
    return labels


def _disambiguate(members: list[Task[Any]], labels: dict[str, str]) -> None:
    seen: dict[str, list[Task[Any]]] = {}
    for task in members:
        seen.setdefault(labels[task.hash], []).append(task)
    for label, same in seen.items():
        if len(same) < 2:
            continue
        for task in same:
            tag = f"#{task.hash[:6]}"
            labels[task.hash] = f"{label[:-1]}, {tag}]" if label.endswith("]") else f"{label}[{tag}]"


def graph_labels(roots: Iterable[Task[Any]]) -> dict[str, str]:
    """`task_labels` over every task reachable from ``roots`` (what the command line shows)."""
    return task_labels(iter_graph(list(roots)))
