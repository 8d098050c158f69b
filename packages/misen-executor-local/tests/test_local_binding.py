"""Binding seen from inside real task processes: CPU affinity, thread-pool variables, GPU device variables and
the value of ``ASSIGNED_RESOURCES``. No GPU is needed: the executor only sets variables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from misen import Task, cache


def test_affinity_and_thread_variables(lx: ModuleType, run_local: Callable[..., Any], workspace: Any) -> None:
    one = Task(lx.probe, name="one")
    two = Task(lx.probe, name="two", res={"cpus": 2})
    report = run_local([one, two], num_cpus=2)
    assert report.ok, report.text
    a, b = cache.load(workspace, one), cache.load(workspace, two)
    assert len(a["affinity"]) == 1 and a["assigned_cpus"] == a["affinity"]
    assert b["affinity"] == [0, 1] and b["assigned_cpus"] == [0, 1]
    for name in (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
    ):
        assert a["env"][name] == "1", (name, a["env"])
        assert b["env"][name] == "2", (name, b["env"])


def test_cpu_indices_restrict_the_cores(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any
) -> None:
    tasks = [Task(lx.probe, name=f"c{i}") for i in range(3)]
    report = run_local(tasks, cpu_indices=[1])
    assert report.ok, report.text
    assert all(cache.load(workspace, t)["affinity"] == [1] for t in tasks)


def test_tasks_without_gpus_see_none(lx: ModuleType, run_local: Callable[..., Any], workspace: Any) -> None:
    task = Task(lx.probe, name="cpu-only")
    report = run_local(task, num_cpus=1, num_cuda_gpus=2, num_rocm_gpus=1)
    assert report.ok, report.text
    env = cache.load(workspace, task)["env"]
    for name in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "ZE_AFFINITY_MASK"):
        assert env[name] == "", (name, env)
    assert cache.load(workspace, task)["assigned_gpus"] == []


def test_two_gpu_tasks_get_different_devices(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any, tmp_path: Path
) -> None:
    meet = str(tmp_path)
    # Each waits until the other has started, so they hold their GPUs at the same time.
    a = Task(lx.probe, name="ga", res={"gpus": 1}, meet=["gb"], rendezvous=meet)
    b = Task(lx.probe, name="gb", res={"gpus": 1}, meet=["ga"], rendezvous=meet)
    report = run_local([a, b], num_cpus=2, num_cuda_gpus=2)
    assert report.ok, report.text
    ra, rb = cache.load(workspace, a), cache.load(workspace, b)
    devices = {ra["env"]["CUDA_VISIBLE_DEVICES"], rb["env"]["CUDA_VISIBLE_DEVICES"]}
    assert devices == {"0", "1"}, (ra["env"], rb["env"])
    for r in (ra, rb):
        assert r["assigned_gpus"] == [int(r["env"]["CUDA_VISIBLE_DEVICES"])]
        assert r["assigned_runtime"] == "cuda"
        assert r["env"]["HIP_VISIBLE_DEVICES"] == "" and r["env"]["ZE_AFFINITY_MASK"] == ""
    where = sorted(o.where for o in report.outcomes.values())
    assert any(w.endswith("cuda 0") for w in where) and any(w.endswith("cuda 1") for w in where), where


def test_gpu_indices_and_runtimes(lx: ModuleType, run_local: Callable[..., Any], workspace: Any) -> None:
    cuda = Task(lx.probe, name="c2", res={"gpus": 2})
    rocm = Task(lx.probe, name="r1", res={"gpus": 1, "gpu_runtime": "rocm"})
    xpu = Task(lx.probe, name="x1", res={"gpus": 1, "gpu_runtime": "xpu"})
    report = run_local(
        [cuda, rocm, xpu], num_cpus=2, cuda_gpu_indices=[3, 5], num_rocm_gpus=1, xpu_gpu_indices=[7]
    )
    assert report.ok, report.text
    c, r, x = cache.load(workspace, cuda), cache.load(workspace, rocm), cache.load(workspace, xpu)
    assert c["env"]["CUDA_VISIBLE_DEVICES"] == "3,5" and c["assigned_gpus"] == [3, 5]
    assert c["env"]["HIP_VISIBLE_DEVICES"] == ""
    assert r["env"]["HIP_VISIBLE_DEVICES"] == "0" == r["env"]["ROCR_VISIBLE_DEVICES"]
    assert r["env"]["CUDA_VISIBLE_DEVICES"] == "" and r["assigned_runtime"] == "rocm"
    assert x["env"]["ZE_AFFINITY_MASK"] == "7" and x["env"]["CUDA_VISIBLE_DEVICES"] == ""


def test_a_worker_is_not_reused_for_other_devices(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any
) -> None:
    # One CPU: everything runs one after the other; the GPU task and the CPU tasks must not share a process.
    plain = [Task(lx.probe, name=f"n{i}") for i in range(2)]
    gpu = Task(lx.probe, name="g", res={"gpus": 1})
    report = run_local([plain[0], gpu, plain[1]], num_cpus=1, num_cuda_gpus=1)
    assert report.ok, report.text
    p0, g, p1 = cache.load(workspace, plain[0]), cache.load(workspace, gpu), cache.load(workspace, plain[1])
    assert p0["pid"] == p1["pid"] != g["pid"]
    assert g["env"]["CUDA_VISIBLE_DEVICES"] == "0" and p1["env"]["CUDA_VISIBLE_DEVICES"] == ""


def test_device_variables_from_env_files_do_not_override_binding(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any, in_project: Path
) -> None:
    (in_project / ".env").write_text("CUDA_VISIBLE_DEVICES=0,1,2\nOMP_NUM_THREADS=7\n")
    try:
        task = Task(lx.probe, name="envfile")
        report = run_local(task, num_cpus=1, num_cuda_gpus=2)
        assert report.ok, report.text
        env = cache.load(workspace, task)["env"]
        assert env["CUDA_VISIBLE_DEVICES"] == ""
        assert env["OMP_NUM_THREADS"] == "7"  # a thread count the project chose stays
        assert env["MKL_NUM_THREADS"] == "1"
    finally:
        (in_project / ".env").unlink()


def test_gpus_count_within_the_devices_this_process_may_use(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any, monkeypatch: Any
) -> None:
    import pytest
    from misen.errors import ConfigError
    from misen_executor_local import LocalExecutor

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    task = Task(lx.probe, name="both", res={"gpus": 2})
    report = run_local(task, num_cpus=1, num_cuda_gpus=2)
    assert report.ok, report.text
    assert cache.load(workspace, task)["env"]["CUDA_VISIBLE_DEVICES"] == "2,3"
    with pytest.raises(ConfigError) as info:
        LocalExecutor(num_cuda_gpus=3).machine()
    assert "num_cuda_gpus = 3" in str(info.value) and "CUDA_VISIBLE_DEVICES" in str(info.value)
