"""misen executor on Dask: work units as Dask tasks on a local cluster, a batch system through dask-jobqueue
(SLURM, PBS, SGE, LSF, HTCondor), or any running Dask scheduler."""

from __future__ import annotations

from typing import TYPE_CHECKING

from misen.plugins import lazy_exports

__all__ = ["DaskExecutor", "DaskExecutorSettings"]

if TYPE_CHECKING:
    from misen_executor_dask.executor import DaskExecutor, DaskExecutorSettings

# Imported on first use: registering the plugin imports this package, not the backend a run may never use.
__getattr__ = lazy_exports(
    __name__,
    {
        "DaskExecutor": "executor",
        "DaskExecutorSettings": "executor",
    },
)
