"""Other ways to size or pick the cluster misen starts: ``adapt`` on the local cluster, and a cluster class given
by its dotted path with its own options (here `distributed.LocalCluster`)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from misen import Task


def test_an_adaptive_local_cluster_starts_workers_for_the_work(
    dk: ModuleType, run_dask: Callable[..., Any], workspace: Any
) -> None:
    tasks = [Task(dk.square, x=i) for i in range(4)]
    top = Task(dk.total, values=[t.T for t in tasks])
    report = run_dask(top, adapt={"minimum": 0, "maximum": 2})
    assert report.ok, report.text
    assert top.result(workspace=workspace) == 0 + 1 + 4 + 9
    assert all(o.where.startswith("dask worker ") for o in report.outcomes.values())


def test_a_cluster_class_by_dotted_path(dk: ModuleType, run_dask: Callable[..., Any], workspace: Any) -> None:
    options = {
        "n_workers": 1,
        "threads_per_worker": 1,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": "127.0.0.1:0",
    }
    task = Task(dk.after, dep=Task(dk.square, x=7).T, tag="dotted")
    report = run_dask(task, cluster="distributed.LocalCluster", cluster_options=options)
    assert report.ok, report.text
    assert task.result(workspace=workspace) == "after dotted"
