"""misen's default executor: parallel worker processes on one machine, with CPU/GPU binding and time limits."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["LocalExecutor", "LocalExecutorSettings"]

if TYPE_CHECKING:
    from misen_executor_local.executor import LocalExecutor, LocalExecutorSettings

# Where each name lives: imported on first use, so that registering the plugin (which imports this package)
# does not import the backend a run may never use.
_WHERE = {
    "LocalExecutor": "executor",
    "LocalExecutorSettings": "executor",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
