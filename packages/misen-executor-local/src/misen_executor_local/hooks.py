"""Hook implementations of misen_executor_local: registers the ``local`` executor."""

from __future__ import annotations

from misen import hookimpl
from misen.plugins import Lazy

__all__ = ["misen_add_executors"]


@hookimpl
def misen_add_executors() -> list[Lazy]:
    return [Lazy("local", "misen_executor_local.executor:LocalExecutor")]  # imported when a run uses it
