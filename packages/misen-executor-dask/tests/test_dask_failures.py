"""Faults on a real cluster: a failing task is one misen failure (no Dask retry), a worker killed mid-unit makes
the unit run again elsewhere with exactly one result, and a unit past its time limit is stopped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from misen import Task, cache
from misen.check import check_workspace


def test_a_failing_task_fails_once_and_skips_its_dependents(
    dk: ModuleType, run_dask: Callable[..., Any], workspace: Any, dask_cluster: Any, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    bad = Task(dk.fail, x=3, marks=str(marks))
    dependent = Task(dk.after, dep=bad.T, tag="d")
    later = Task(dk.after, dep=dependent.T, tag="e")
    fine = Task(dk.square, x=4)
    report = run_dask([later, fine], address=dask_cluster.scheduler_address)
    assert not report.ok
    by_name = {(report.units[u].root.name, report.units[u].root.arguments.get("tag")): o for u, o in report.outcomes.items()}
    assert by_name[("fail", None)].status == "failed"
    assert "ValueError: fail 3" in (by_name[("fail", None)].error or "")
    assert by_name[("after", "d")].status == "skipped"
    assert by_name[("after", "e")].status == "skipped"
    assert by_name[("square", None)].status == "done"
    assert fine.result(workspace=workspace) == 16
    # A task failure is not retried by Dask: the body ran exactly once, and the failure is recorded.
    assert (marks / "fail-3").read_text().split() and len((marks / "fail-3").read_text().split()) == 1
    assert "fail 3" in (cache.failure(workspace, bad) or {}).get("error", "")
    assert "fail 3" in report.text


def test_a_worker_killed_mid_unit_reruns_the_unit_once_elsewhere(
    dk: ModuleType, run_dask: Callable[..., Any], workspace: Any, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    task = Task(dk.kill_worker_once, marks=str(marks))
    dependent = Task(dk.after, dep=task.T, tag="k")
    report = run_dask(dependent, workers=2)
    assert report.ok, report.text
    # The first attempt killed its Dask worker mid-unit; the scheduler ran the unit again, which found the dead
    # attempt's lock released and finished: two attempts, one result.
    assert len((marks / "attempts").read_text().split()) == 2
    assert task.result(workspace=workspace) == "survived"
    assert dependent.result(workspace=workspace) == "after k"
    assert workspace.lock_holder(task.hash) is None
    stored = check_workspace(workspace)  # results in folders and small ones kept in records, each checked
    assert stored.ok and stored.results == 2


def test_a_unit_past_its_time_limit_is_stopped(
    dk: ModuleType, run_dask: Callable[..., Any], workspace: Any, dask_cluster: Any
) -> None:
    task = Task(dk.hang, minutes=0.02)  # 1.2 s
    report = run_dask(task, address=dask_cluster.scheduler_address, grace_period=1.0)
    [outcome] = report.outcomes.values()
    assert outcome.status == "timeout", outcome
    assert "time limit" in (outcome.error or "")
    assert (cache.failure(workspace, task) or {}).get("status") == "timeout"
