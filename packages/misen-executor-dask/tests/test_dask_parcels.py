"""Cheap units packed into parcels (one Dask task running several units), and slow ones kept one per task, on a
real cluster: the Dask tasks are counted from the scheduler's task stream."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from misen import Task, cache


@contextmanager
def dask_tasks(address: str) -> Iterator[set[str]]:
    """The keys of the misen Dask tasks the cluster at ``address`` runs inside the block."""
    from distributed import Client, get_task_stream

    keys: set[str] = set()
    with Client(address, set_as_default=False) as client, get_task_stream(client=client) as stream:
        yield keys
    keys.update(str(t["key"]) for t in stream.data if str(t["key"]).startswith("misen-"))


def test_cheap_units_share_dask_tasks_and_a_failure_inside_a_parcel_is_its_own(
    dk: ModuleType, run_dask: Callable[..., Any], workspace: Any, dask_cluster: Any, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    leaves = [Task(dk.flaky, x=i, marks=str(marks)) for i in range(60)]
    tops = [Task(dk.after, dep=leaf.T, tag=str(i)) for i, leaf in enumerate(leaves)]
    with dask_tasks(dask_cluster.scheduler_address) as keys:
        report = run_dask(tops, address=dask_cluster.scheduler_address)
    assert len(report.outcomes) == 120
    assert len(keys) < 60, keys  # parcels: fewer Dask tasks than units
    by_task = {report.units[u].root: o for u, o in report.outcomes.items()}
    for i, (leaf, top) in enumerate(zip(leaves, tops, strict=True)):
        if i % 10 == 3:
            assert by_task[leaf].status == "failed" and f"flaky {i}" in (by_task[leaf].error or "")
            assert f"flaky {i}" in (cache.failure(workspace, leaf) or {}).get("error", "")
            assert by_task[top].status == "skipped"
        else:
            assert by_task[leaf].status == "done" and leaf.result(workspace=workspace) == i
            assert top.result(workspace=workspace) == f"after {i}"
    # Each body ran exactly once, failing ones included (no Dask retry of a parcel).
    assert all(len((marks / f"flaky-{i}").read_text().split()) == 1 for i in range(60))


def test_a_slow_task_function_keeps_one_dask_task_per_unit(
    dk: ModuleType, run_dask: Callable[..., Any], workspace: Any, dask_cluster: Any
) -> None:
    naps = [Task(dk.nap, x=i, seconds=0.6) for i in range(6)]
    with dask_tasks(dask_cluster.scheduler_address) as keys:
        report = run_dask(naps, address=dask_cluster.scheduler_address)
    assert report.ok, report.text
    assert len(keys) == 6, keys
    workers = {o.where.split(" (")[0] for o in report.outcomes.values()}
    assert workers == {"dask worker 0", "dask worker 1"}, workers


def test_a_worker_killed_inside_a_parcel_reruns_it_with_one_result_per_task(
    dk: ModuleType, run_dask: Callable[..., Any], workspace: Any, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    tasks = [Task(dk.kill_worker_at, x=i, at=20, marks=str(marks)) for i in range(40)]
    report = run_dask(tasks, workers=2)
    assert report.ok, report.text
    assert (marks / "killed").exists()
    assert len((marks / "kill-at-20").read_text().split()) == 2  # the killed attempt, and the rerun
    # The units the dead attempt finished were found cached by the rerun: every other body ran once.
    assert all(len((marks / f"kill-at-{i}").read_text().split()) == 1 for i in range(40) if i != 20)
    assert [t.result(workspace=workspace) for t in tasks] == list(range(40))
    assert all(workspace.lock_holder(t.hash) is None for t in tasks)
