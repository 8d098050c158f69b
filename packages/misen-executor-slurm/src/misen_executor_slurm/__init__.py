"""misen_executor_slurm: run misen work units as SLURM jobs (executor type ``slurm``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from misen.plugins import lazy_exports

__all__ = ["Settings", "SlurmExecutor"]

if TYPE_CHECKING:
    from misen_executor_slurm.executor import Settings, SlurmExecutor

# Imported on first use: registering the plugin imports this package, not the backend a run may never use.
__getattr__ = lazy_exports(
    __name__,
    {
        "Settings": "executor",
        "SlurmExecutor": "executor",
    },
)
