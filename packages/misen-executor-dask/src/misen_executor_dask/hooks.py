"""Hook implementations of misen_executor_dask: registers the ``dask`` executor."""

from __future__ import annotations

from typing import Any

from misen.hookspecs import hookimpl

__all__ = ["misen_add_executors"]


@hookimpl
def misen_add_executors() -> list[type[Any]]:
    from misen_executor_dask.executor import DaskExecutor

    return [DaskExecutor]
