"""dask-jobqueue's SLURMCluster against a real single-node SLURM cluster (the slurm package's test cluster,
`misen_executor_slurm.testing.SlurmTestCluster`): the Dask workers are SLURM jobs, the units run in them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from misen import Task, cache


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    pytest.importorskip("dask_jobqueue")
    testing = pytest.importorskip("misen_executor_slurm.testing")
    reason = testing.missing_requirements()
    if reason:
        pytest.skip(reason)
    cluster = testing.SlurmTestCluster(tmp_path_factory.mktemp("slurm", numbered=True), cluster_name=f"dask{os.getpid()}")
    cluster.start()
    try:
        with cluster.activate():
            yield cluster
    finally:
        cluster.stop()


def test_units_run_in_slurm_jobs_through_dask_jobqueue(
    dk: ModuleType, run_dask: Callable[..., Any], workspace: Any, slurm: Any, tmp_path: Path
) -> None:
    leaves = [Task(dk.square, x=i) for i in range(4)]
    top = Task(dk.total, values=[t.T for t in leaves])
    options = {
        "cores": 1,
        "memory": "1GB",
        "processes": 1,
        "queue": slurm.partition,
        "walltime": "00:10:00",
        "scheduler_options": {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
        "worker_extra_args": [],
        "log_directory": str(tmp_path / "jobs"),
        "job_name": "misen-dask-test",
    }
    report = run_dask(top, cluster="slurm", cluster_options=options, workers=1, timeout=120)
    assert report.ok, report.text
    assert top.result(workspace=workspace) == 0 + 1 + 4 + 9
    # The units ran inside a SLURM job, and its id is the provenance's job id.
    record = cache.provenance(workspace, top) or {}
    assert record.get("job_id"), record
    assert all(o.where.startswith("dask worker ") for o in report.outcomes.values()), report.outcomes
    # The job is cancelled once the run ended (misen closed the cluster it started): none pending or running.
    assert slurm.run("squeue", "-h", "-n", "misen-dask-test", "-t", "PENDING,RUNNING").stdout.strip() == ""
