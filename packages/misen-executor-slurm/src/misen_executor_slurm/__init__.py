"""misen_executor_slurm: run misen work units as SLURM jobs (executor type ``slurm``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Settings", "SlurmExecutor"]

if TYPE_CHECKING:
    from misen_executor_slurm.executor import Settings, SlurmExecutor


def __getattr__(name: str) -> Any:
    # Lazy, so reading entry points and `import misen` stay cheap.
    if name in __all__:
        from misen_executor_slurm import executor

        return getattr(executor, name)
    raise AttributeError(f"module 'misen_executor_slurm' has no attribute {name!r}")
