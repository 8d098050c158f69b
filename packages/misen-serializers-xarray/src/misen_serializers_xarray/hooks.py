"""Hook implementations of misen_serializers_xarray: registers its serializer (imports no xarray)."""

from __future__ import annotations

from typing import Any

from misen.hookspecs import hookimpl

from misen_serializers_xarray.serializer import XarraySerializer


@hookimpl
def misen_add_serializers() -> list[Any]:
    return [XarraySerializer]
