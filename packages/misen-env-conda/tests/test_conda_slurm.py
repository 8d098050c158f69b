"""The SLURM job activates the conda prefix on the node: the task finds the locked executable and data."""

from __future__ import annotations

import os
from typing import Any

from misen import cache
from misen.tasks import Task


def test_slurm_job_runs_in_the_prefix(conda_project: Any, conda_slurm_cluster: Any) -> None:
    from misen_executor_slurm.executor import SlurmExecutor

    p = conda_project
    assert "CONDA_PREFIX" not in os.environ  # the submitting process is not activated: the job does it
    executor = SlurmExecutor(poll_interval=0.3, max_poll_interval=1.0, default_flags=["--mem=512M"])
    task = Task(p.tasks.native, n=7)
    report = p.run(task, executor=executor)
    assert report.ok, report.outcomes
    (prefix,) = p.prefixes()
    value = task.result(workspace=p.workspace)
    assert value["out"] == f"hello from misen-demo in {prefix}"
    assert value["data"] == "forty-two" and value["declared"] == "declared-by-the-package"
    prov = cache.provenance(p.workspace, task) or {}
    assert prov["executor"] == "slurm" and prov.get("job_id")
    assert prov["native_environment"]["digest"] == prefix.name
    # A second job reuses the prefix.
    again = Task(p.tasks.native, n=8)
    assert p.run(again, executor=executor).ok
    assert p.prefixes() == [prefix]
    assert again.result(workspace=p.workspace)["prefix"] == str(prefix)
