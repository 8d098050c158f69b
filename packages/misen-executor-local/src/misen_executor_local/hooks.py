"""Hook implementations of misen_executor_local: registers the ``local`` executor."""

from __future__ import annotations

from typing import Any

from misen import hookimpl

__all__ = ["misen_add_executors"]


@hookimpl
def misen_add_executors() -> list[type[Any]]:
    from misen_executor_local.executor import LocalExecutor

    return [LocalExecutor]
