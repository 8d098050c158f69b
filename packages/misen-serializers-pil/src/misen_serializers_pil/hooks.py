"""Hook implementations of misen_serializers_pil: registers its serializer and hasher (imports no Pillow)."""

from __future__ import annotations

from typing import Any

from misen.hookspecs import hookimpl

from misen_serializers_pil.serializer import ImageHasher, ImageSerializer


@hookimpl
def misen_add_serializers() -> list[Any]:
    return [ImageSerializer]


@hookimpl
def misen_add_hashers() -> list[Any]:
    return [ImageHasher()]
