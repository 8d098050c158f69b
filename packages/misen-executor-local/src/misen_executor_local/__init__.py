"""misen's default executor: parallel worker processes on one machine, with CPU/GPU binding and time limits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from misen.plugins import lazy_exports

__all__ = ["LocalExecutor", "LocalExecutorSettings"]

if TYPE_CHECKING:
    from misen_executor_local.executor import LocalExecutor, LocalExecutorSettings

# Imported on first use: registering the plugin imports this package, not the backend a run may never use.
__getattr__ = lazy_exports(
    __name__,
    {
        "LocalExecutor": "executor",
        "LocalExecutorSettings": "executor",
    },
)
