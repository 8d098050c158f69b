"""Hook implementations of misen_serializers_sympy: registers its serializer and hasher (imports no SymPy)."""

from __future__ import annotations

from typing import Any

from misen.hookspecs import hookimpl

from misen_serializers_sympy.serializer import SympyHasher, SympySerializer


@hookimpl
def misen_add_serializers() -> list[Any]:
    return [SympySerializer]


@hookimpl
def misen_add_hashers() -> list[Any]:
    return [SympyHasher()]
