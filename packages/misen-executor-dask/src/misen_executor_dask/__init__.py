"""misen executor on Dask: work units as Dask tasks on a local cluster, a batch system through dask-jobqueue
(SLURM, PBS, SGE, LSF, HTCondor), or any running Dask scheduler."""

from __future__ import annotations

from misen_executor_dask.executor import DaskExecutor, DaskExecutorSettings

__all__ = ["DaskExecutor", "DaskExecutorSettings"]
