"""misen's default executor: parallel worker processes on one machine, with CPU/GPU binding and time limits."""

from __future__ import annotations

from misen_executor_local.executor import LocalExecutor, LocalExecutorSettings

__all__ = ["LocalExecutor", "LocalExecutorSettings"]
