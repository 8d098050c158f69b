"""Sweep tables for the report: the arguments that vary between sibling tasks, then their results' fields."""

from __future__ import annotations

from typing import Any

from misen.tasks import RuntimeArgument, Task

__all__ = ["plain_args", "scalars", "sweep_tables"]


def plain_args(task: Task[Any], memo: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Scalar argument values of ``task`` and (for names it lacks) of the tasks it takes: a sweep's columns."""
    hit = memo.get(task.hash)
    if hit is not None:
        return hit
    out: dict[str, Any] = {}
    for name, value in task.arguments.items():
        if type(value) is Task:
            for k, v in plain_args(value, memo).items():
                out.setdefault(k, v)
        elif type(value) is not RuntimeArgument and (value is None or isinstance(value, bool | int | float | str)):
            out[name] = value
    memo[task.hash] = out
    return out


def scalars(value: Any) -> dict[str, Any] | None:
    """A result as table cells: a scalar as ``result``, a dict's scalar entries by key; else ``None``."""
    if value is None or isinstance(value, bool | int | float | str):
        return {"result": value if not isinstance(value, str) or len(value) < 200 else value[:199] + "…"}
    if isinstance(value, dict):
        cells: dict[str, Any] = {
            str(k): v
            for k, v in value.items()
            if v is None or isinstance(v, bool | int | float) or (isinstance(v, str) and len(v) < 200)
        }
        return cells or None
    try:  # NumPy and similar scalars
        item = value.item() if getattr(value, "shape", None) == () else None
    except Exception:
        item = None
    return {"result": item} if isinstance(item, bool | int | float) else None


def sweep_tables(tables: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One sortable table per function: the arguments that vary between its tasks, then its result's cells."""
    out = []
    for fn, rows in tables.items():
        if len(rows) < 2:
            continue
        keys: list[str] = []
        for r in rows:
            keys.extend(k for k in r["args"] if k not in keys)
        varying = [k for k in keys if len({repr(r["args"].get(k)) for r in rows}) > 1]
        cells: list[str] = []
        for r in rows:
            cells.extend(k for k in r["cells"] if k not in cells)
        out.append({
            "fn": fn,
            "columns": varying + cells,
            "params": len(varying),
            "rows": [{"task": r["task"], "values": [r["args"].get(k) for k in varying] + [r["cells"].get(c) for c in cells]} for r in rows],
        })
    return out
