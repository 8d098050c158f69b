"""Hook implementations of misen_env_conda: registers the ``conda`` environment."""

from __future__ import annotations

from typing import Any

from misen import hookimpl

__all__ = ["misen_add_environments"]


@hookimpl
def misen_add_environments() -> list[type[Any]]:
    from misen_env_conda.environment import CondaEnvironment

    return [CondaEnvironment]
