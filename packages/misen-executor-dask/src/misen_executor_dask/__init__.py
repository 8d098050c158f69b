"""misen executor on Dask: work units as Dask tasks on a local cluster, a batch system through dask-jobqueue
(SLURM, PBS, SGE, LSF, HTCondor), or any running Dask scheduler."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["DaskExecutor", "DaskExecutorSettings"]

if TYPE_CHECKING:
    from misen_executor_dask.executor import DaskExecutor, DaskExecutorSettings

# Where each name lives: imported on first use, so that registering the plugin (which imports this package)
# does not import the backend a run may never use.
_WHERE = {
    "DaskExecutor": "executor",
    "DaskExecutorSettings": "executor",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
