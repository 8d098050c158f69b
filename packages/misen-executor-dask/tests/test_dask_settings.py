"""Settings: what is refused (one clear line naming the key), how the local cluster is laid out, and selection
by name. None of these start a cluster, except the unreachable scheduler (nothing listens there)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from misen import Task
from misen.errors import ConfigError, MisenError
from misen_executor_dask import DaskExecutor, DaskExecutorSettings
from misen_executor_dask._binding import usable_cpus
from misen_executor_dask._cluster import local_layout, planned_capacity


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"address": "tcp://127.0.0.1:1", "workers": 2}, "address connects to a running Dask scheduler"),
        ({"workers": 2, "adapt": {"maximum": 4}}, "exclude each other"),
        ({"cluster": "kubernetes"}, "cluster must be one of local, slurm"),
        ({"adapt": {"minimum": 3, "maximum": 1}}, "adapt.minimum"),
        ({"adapt": {"most": 3}}, "adapt takes only minimum and maximum"),
        ({"workers": -1}, "workers must be a non-negative integer"),
    ],
)
def test_bad_settings_are_refused_in_one_line(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        DaskExecutor(**settings)
    assert "\n" not in str(info.value)


def test_the_executor_is_found_by_name() -> None:
    from misen.runner import resolve_executor

    assert type(resolve_executor("dask")) is DaskExecutor
    assert DaskExecutor().describe() == f"dask (local cluster, {len(usable_cpus())} workers)"


def test_the_local_cluster_gives_each_worker_its_own_cores_and_devices() -> None:
    cpus = usable_cpus()
    slots = local_layout(DaskExecutorSettings(workers=1, num_cuda_gpus=3))
    assert slots == [{"cpus": cpus, "cuda": [0, 1, 2]}]
    slots = local_layout(DaskExecutorSettings(workers=len(cpus), num_cuda_gpus=len(cpus) + 1))
    assert [s["cpus"] for s in slots] == [[c] for c in cpus]
    assert sorted(d for s in slots for d in s["cuda"]) == list(range(len(cpus) + 1))
    capacity = planned_capacity(DaskExecutorSettings(workers=1, num_cuda_gpus=2, worker_resources={"LICENSE": 1}))
    assert capacity is not None
    assert capacity["CPU"] == len(cpus) and capacity["GPU"] == 2 and capacity["LICENSE"] == 1


def test_jobqueue_workers_declare_their_cores_and_memory() -> None:
    settings = DaskExecutorSettings(
        cluster="slurm", cluster_options={"cores": 8, "memory": "32GiB", "processes": 2}, workers=2
    )
    assert planned_capacity(settings) == {"CPU": 4, "MEMORY": 16.0}


def test_a_batch_cluster_with_no_size_is_refused(dk: ModuleType, run_dask: Callable[..., Any]) -> None:
    pytest.importorskip("dask_jobqueue")
    with pytest.raises(ConfigError, match="starts no job by itself: set workers"):
        run_dask(Task(dk.square, x=1), cluster="slurm", cluster_options={"cores": 1, "memory": "1GB"})


def test_an_unreachable_scheduler_is_one_clear_error(dk: ModuleType, run_dask: Callable[..., Any]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(MisenError, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"):
        run_dask(Task(dk.square, x=1), address=f"tcp://127.0.0.1:{port}", timeout=2)
