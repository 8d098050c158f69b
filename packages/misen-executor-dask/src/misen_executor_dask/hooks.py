"""Hook implementations of misen_executor_dask: registers the ``dask`` executor."""

from __future__ import annotations

from misen.hookspecs import hookimpl
from misen.plugins import Lazy

__all__ = ["misen_add_executors"]


@hookimpl
def misen_add_executors() -> list[Lazy]:
    return [Lazy("dask", "misen_executor_dask.executor:DaskExecutor")]  # imported when a run uses it
