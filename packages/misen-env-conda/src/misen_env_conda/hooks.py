"""Hook implementations of misen_env_conda: registers the ``conda`` environment."""

from __future__ import annotations

from misen import hookimpl
from misen.plugins import Lazy

__all__ = ["misen_add_environments"]


@hookimpl
def misen_add_environments() -> list[Lazy]:
    return [Lazy("conda", "misen_env_conda.environment:CondaEnvironment")]  # imported when it is used
