"""Hook implementations of misen_executor_local: registers the ``local`` executor."""

from __future__ import annotations

from typing import Any

from misen import hookimpl
from misen.plugins import Lazy

__all__ = ["misen_add_executors"]


@hookimpl
def misen_add_executors() -> list[type[Any]]:
    return [Lazy("local", "misen_executor_local.executor:LocalExecutor")]  # imported when a run uses it
