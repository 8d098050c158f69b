"""A sweep of 200 units with dependencies on a real two-worker cluster, run once, then found cached."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from misen import Task


def test_a_sweep_of_200_tasks_with_dependencies(
    dk: ModuleType, run_dask: Callable[..., Any], workspace: Any, dask_cluster: Any, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    xs = [Task(dk.square, x=i, marks=str(marks)) for i in range(150)]
    ys = [Task(dk.add3, a=xs[3 * j].T, b=xs[3 * j + 1].T, c=xs[3 * j + 2].T) for j in range(49)]
    top = Task(dk.total, values=[y.T for y in ys] + [x.T for x in xs[147:]])
    report = run_dask(top, address=dask_cluster.scheduler_address)
    assert report.ok, report.text
    assert len(report.outcomes) == 200
    assert {o.status for o in report.outcomes.values()} == {"done"}
    assert top.result(workspace=workspace) == sum(i * i for i in range(150))
    # Every leaf ran exactly once, on both workers.
    assert sorted(p.name for p in marks.iterdir()) == sorted(f"square-{i}" for i in range(150))
    assert all(len(p.read_text().split()) == 1 for p in marks.iterdir())
    workers = {o.where.split(" (")[0] for o in report.outcomes.values()}
    assert workers == {"dask worker 0", "dask worker 1"}, workers
    again = run_dask(top, address=dask_cluster.scheduler_address)
    assert again.ok and not again.outcomes
