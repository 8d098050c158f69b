"""Results of a sweep as a table: one row per experiment, its distinguishing parameters and the scalar fields of
a named result (what ``result NAME --table`` prints and `misen.Experiment.results_frame` returns)."""

from __future__ import annotations

import dataclasses
import enum
import itertools
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from misen import cache
from misen.errors import NotCachedError
from misen.runner import resolve_workspace

if TYPE_CHECKING:
    from misen.experiment import Experiment
    from misen.workspace import Workspace

__all__ = ["ResultsFrameMethod", "results_rows", "scalar_fields", "sweep_members", "to_frame"]

_SCALARS = (bool, int, float, str, type(None))


def _scalar(value: Any) -> tuple[bool, Any]:
    if isinstance(value, enum.Enum):
        return True, value.name
    if isinstance(value, _SCALARS):
        return True, value
    if isinstance(value, os.PathLike):
        return True, os.fspath(value)
    item = getattr(value, "item", None)  # NumPy scalars and 0-d arrays
    if callable(item) and getattr(value, "ndim", None) == 0:
        try:
            found = item()
        except Exception:
            return False, None
        return isinstance(found, _SCALARS), found
    return False, None


def scalar_fields(value: Any, name: str = "value") -> dict[str, Any]:
    """The scalar fields of a result: itself if scalar, else the scalar items of a mapping, attrs class or
    dataclass (nested mappings one level deep, as ``outer.inner``); lists and arrays are left out."""
    ok, found = _scalar(value)
    if ok:
        return {name: found}
    if attrs.has(type(value)):
        value = attrs.asdict(value, recurse=False)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if not isinstance(value, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        ok, found = _scalar(item)
        if ok:
            out[str(key)] = found
        elif isinstance(item, Mapping):
            for inner, sub in item.items():
                ok, found = _scalar(sub)
                if ok:
                    out[f"{key}.{inner}"] = found
    return out


def sweep_members(base: Experiment | type[Experiment], sweep: Mapping[str, Iterable[Any]]) -> list[tuple[dict[str, Any], Experiment]]:
    """``(values, experiment)`` for each combination of ``sweep``'s values (on top of ``base``'s parameters)."""
    names = list(sweep)
    value_lists = [list(v) if not isinstance(v, str | bytes) else [v] for v in sweep.values()]
    out = []
    for combo in itertools.product(*value_lists) if names else [()]:
        values = dict(zip(names, combo, strict=True))
        if isinstance(base, type):
            exp = base(**values)
        else:
            exp = attrs.evolve(base, **values)  # type: ignore[misc]
        out.append((values, exp))
    return out


def results_rows(
    members: list[tuple[dict[str, Any], Experiment]], name: str, workspace: Workspace
) -> list[dict[str, Any]]:
    """One row per member: its values, then the scalar fields of its ``name`` result (``status`` when missing)."""
    rows = []
    for values, exp in members:
        task = exp[name]
        row: dict[str, Any] = dict(values)
        try:
            result = task.result(workspace, compute=False)
        except NotCachedError:
            row["status"] = cache.status(workspace, task) if task.cacheable else "pending"
        else:
            row.update(scalar_fields(result, name))
        rows.append(row)
    return rows


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """Every key of the rows, in first-seen order."""
    out: dict[str, None] = {}
    for row in rows:
        out.update(dict.fromkeys(row))
    return list(out)


def to_frame(rows: list[dict[str, Any]]) -> Any:
    """A pandas DataFrame of ``rows`` when pandas is installed, else the rows themselves."""
    try:
        import pandas as pd
    except ImportError:
        return rows
    return pd.DataFrame(rows, columns=columns(rows))


class ResultsFrameMethod:
    """``results_frame`` works on the class (a sweep from scratch) and on an instance (a sweep around it)."""

    def __get__(self, obj: Experiment | None, cls: type[Experiment]) -> Callable[..., Any]:
        def results_frame(
            name: str, sweep: Mapping[str, Any] | None = None, workspace: Workspace | str | None = None
        ) -> Any:
            """The ``name`` results of a sweep as a table: one row per combination of ``sweep``'s values.

            Each row holds the swept parameters and the scalar fields of that experiment's result (the result
            itself if scalar; the scalar items of a dict, attrs class or dataclass). A result not computed yet
            leaves its fields empty and gives its ``status``. Returns a pandas DataFrame when pandas is
            installed, else a list of dicts.

            Example: ``TrainingExperiment.results_frame("metrics", {"lr": [0.1, 0.01], "dim": [256, 512]})``.
            """
            members = sweep_members(obj if obj is not None else cls, dict(sweep or {}))
            return to_frame(results_rows(members, name, resolve_workspace(workspace)))

        return results_frame
