"""Scheduling with real worker processes: parallelism, packing against CPUs and memory, worker reuse, refusal of
requests larger than the machine, and the settings section."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from misen import Task, cache
from misen.errors import ConfigError, ResourceError
from misen_executor_local import LocalExecutor


def overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def test_independent_tasks_run_at_the_same_time(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any
) -> None:
    tasks = [Task(lx.probe, name=f"p{i}", seconds=1.0) for i in range(2)]
    report = run_local(tasks, num_cpus=2)
    assert report.ok, report.text
    a, b = (cache.load(workspace, t) for t in tasks)
    assert overlap(a, b), (a, b)
    assert a["pid"] != b["pid"]
    assert {a["affinity"][0], b["affinity"][0]} == {0, 1}


def test_a_two_cpu_task_does_not_share_two_cpus(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any
) -> None:
    big = Task(lx.probe, name="big", seconds=0.8, res={"cpus": 2})
    small = [Task(lx.probe, name=f"small{i}", seconds=0.4) for i in range(2)]
    report = run_local([big, *small], num_cpus=2)
    assert report.ok, report.text
    b = cache.load(workspace, big)
    for t in small:
        s = cache.load(workspace, t)
        assert not overlap(b, s), (b, s)
    assert b["affinity"] == [0, 1]


def test_memory_is_packed(lx: ModuleType, run_local: Callable[..., Any], workspace: Any) -> None:
    tasks = [Task(lx.probe, name=f"m{i}", seconds=0.5, res={"memory": 6}) for i in range(2)]
    report = run_local(tasks, num_cpus=2, max_memory=10)
    assert report.ok, report.text
    a, b = (cache.load(workspace, t) for t in tasks)
    assert not overlap(a, b), (a, b)


def test_dependents_wait_for_their_dependencies(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any
) -> None:
    first = Task(lx.probe, name="first", seconds=0.3)
    chained = Task(lx.after, dep=first.T, tag="x")
    report = run_local([chained], num_cpus=2)
    assert report.ok, report.text
    assert cache.load(workspace, chained) == "after x"
    assert cache.load(workspace, first)["end"] <= cache.provenance(workspace, chained)["start"]


def test_workers_are_reused(lx: ModuleType, run_local: Callable[..., Any], workspace: Any) -> None:
    tasks = [Task(lx.probe, name=f"r{i}") for i in range(8)]
    report = run_local(tasks, num_cpus=2)
    assert report.ok, report.text
    pids = [cache.load(workspace, t)["pid"] for t in tasks]
    assert len(set(pids)) <= 2 < len(pids)
    where = {o.where for o in report.outcomes.values()}
    assert all(w.startswith("worker ") and "(pid " in w and "cpus " in w for w in where), where


def test_started_events_say_where(lx: ModuleType, workspace: Any) -> None:
    from misen.reporting import Reporter
    from misen.runner import run

    seen: list[str] = []

    class Record(Reporter):
        def unit_started(self, unit: Any, where: str) -> None:
            seen.append(where)

    run(Task(lx.probe, name="w"), executor=LocalExecutor(num_cpus=1), workspace=workspace, reporter=Record())
    assert len(seen) == 1 and seen[0].startswith("worker 1 (pid ") and seen[0].endswith("cpus 0"), seen


@pytest.mark.parametrize(
    ("res", "settings", "words"),
    [
        ({"cpus": 3}, {"num_cpus": 2}, ["cpus=3", "2 CPU"]),
        ({"memory": 64}, {"max_memory": 16}, ["memory=64", "16.0 GiB", "max_memory"]),
        ({"gpus": 1}, {}, ["gpus=1", "0 cuda GPU", "num_cuda_gpus"]),
        ({"gpus": 3, "gpu_runtime": "rocm"}, {"num_rocm_gpus": 2}, ["gpus=3 (rocm)", "2 rocm GPU"]),
        ({"nodes": 2}, {}, ["nodes=2", "one machine"]),
    ],
)
def test_too_large_requests_are_refused_before_anything_runs(
    lx: ModuleType,
    run_local: Callable[..., Any],
    workspace: Any,
    res: dict[str, Any],
    settings: dict[str, Any],
    words: list[str],
) -> None:
    fine = Task(lx.probe, name="fine")
    huge = Task(lx.probe, name="huge", res=res)
    with pytest.raises(ResourceError) as info:
        run_local([fine, huge], **settings)
    message = str(info.value)
    assert "probe" in message and "huge" in message
    for word in words:
        assert word in message, message
    assert not cache.is_cached(workspace, fine)
    assert list(workspace.iter_records("task")) == []


def test_the_default_memory_request_fits_a_small_machine(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any
) -> None:
    # Resources() asks for 8 GiB; a 4 GiB machine still runs such tasks (one at a time).
    tasks = [Task(lx.probe, name=f"d{i}", seconds=0.3) for i in range(2)]
    report = run_local(tasks, num_cpus=2, max_memory=4)
    assert report.ok, report.text
    a, b = (cache.load(workspace, t) for t in tasks)
    assert not overlap(a, b)


def test_settings_errors_name_the_key(in_project: Path, tmp_path: Path) -> None:
    from misen.runner import resolve_executor
    from misen.session import set_config_override

    with pytest.raises(ConfigError) as info:
        LocalExecutor(num_cpu=2)
    assert "num_cpu" in str(info.value) and "num_cpus" in str(info.value)
    config = tmp_path / "misen.toml"
    config.write_text('[executor]\ntype = "local"\nnum_cpus = "many"\n')
    set_config_override(config)
    with pytest.raises(ConfigError) as info:
        resolve_executor(None)
    assert str(config) in str(info.value) and "num_cpus" in str(info.value) and "many" in str(info.value)
    config.write_text('[executor]\ntype = "local"\nnum_cpus = 1\ncuda_gpu_indices = [2, 5]\n')
    set_config_override(config)
    ex = resolve_executor(None)
    assert isinstance(ex, LocalExecutor)
    m = ex.machine()
    assert m.cpus == [0] and m.gpus["cuda"] == [2, 5] and m.gpus["rocm"] == []
    with pytest.raises(ConfigError) as info:
        LocalExecutor(num_cpus=64).machine()
    assert "num_cpus = 64" in str(info.value)


def test_local_is_the_default_executor(in_project: Path) -> None:
    from misen.runner import resolve_executor

    assert isinstance(resolve_executor(None), LocalExecutor)
