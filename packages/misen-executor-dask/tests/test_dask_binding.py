"""Binding seen from inside the units' processes on a cluster misen starts: CPU affinity, thread-pool variables,
GPU device variables and ``ASSIGNED_RESOURCES``. No GPU is needed: declared GPUs are only variables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from misen import Task, cache
from misen.errors import ResourceError


def test_gpus_and_cpus_are_bound_per_unit(
    dk: ModuleType, run_dask: Callable[..., Any], workspace: Any, tmp_path: Path
) -> None:
    meet = str(tmp_path)
    # One worker owning both cores and two declared GPUs. The two GPU units wait for each other, so they hold
    # their devices and cores at the same time; the two-core unit runs once they are done.
    ga = Task(dk.probe, name="ga", res={"gpus": 1}, meet=["gb"], rendezvous=meet)
    gb = Task(dk.probe, name="gb", res={"gpus": 1}, meet=["ga"], rendezvous=meet)
    cpu = Task(dk.probe, name="cpu")
    wide = Task(dk.probe, name="wide", res={"cpus": 2})
    report = run_dask([ga, gb, cpu, wide], workers=1, num_cuda_gpus=2)
    assert report.ok, report.text
    a, b, c, w = (cache.load(workspace, t) for t in (ga, gb, cpu, wide))
    assert {a["env"]["CUDA_VISIBLE_DEVICES"], b["env"]["CUDA_VISIBLE_DEVICES"]} == {"0", "1"}
    assert [int(a["env"]["CUDA_VISIBLE_DEVICES"])] == a["assigned_gpus"]
    assert [int(b["env"]["CUDA_VISIBLE_DEVICES"])] == b["assigned_gpus"]
    assert {a["affinity"][0], b["affinity"][0]} == {0, 1}  # at the same time: one core each, not the same one
    for probe in (a, b, c):
        assert len(probe["affinity"]) == 1 and probe["assigned_cpus"] == probe["affinity"]
        assert probe["env"]["OMP_NUM_THREADS"] == "1" and probe["env"]["OPENBLAS_NUM_THREADS"] == "1"
        assert probe["env"]["HIP_VISIBLE_DEVICES"] == "" and probe["env"]["ZE_AFFINITY_MASK"] == ""
    assert c["env"]["CUDA_VISIBLE_DEVICES"] == "" and c["assigned_gpus"] == []
    assert w["affinity"] == [0, 1] and w["assigned_cpus"] == [0, 1]
    assert w["env"]["OMP_NUM_THREADS"] == "2" and w["env"]["CUDA_VISIBLE_DEVICES"] == ""


def test_a_unit_no_worker_can_hold_is_refused_before_anything_starts(
    dk: ModuleType, run_dask: Callable[..., Any]
) -> None:
    with pytest.raises(ResourceError, match=r"gpus=1 \(GPU\), but the largest Dask worker has 0"):
        run_dask(Task(dk.probe, name="nogpu", res={"gpus": 1}), workers=2)
    with pytest.raises(ResourceError, match=r"cpus=3 \(CPU\)"):
        run_dask(Task(dk.probe, name="toowide", res={"cpus": 3}), workers=1)
