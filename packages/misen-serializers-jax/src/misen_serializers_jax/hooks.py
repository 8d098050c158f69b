"""Hook implementations of misen_serializers_jax: registers its serializers and hasher (imports no jax)."""

from __future__ import annotations

from typing import Any

from misen.hookspecs import hookimpl

from misen_serializers_jax.arrays import ArraySerializer
from misen_serializers_jax.hashers import JaxHasher
from misen_serializers_jax.pytrees import PytreeSerializer


@hookimpl
def misen_add_serializers() -> list[Any]:
    return [ArraySerializer, PytreeSerializer]


@hookimpl
def misen_add_hashers() -> list[Any]:
    return [JaxHasher()]
