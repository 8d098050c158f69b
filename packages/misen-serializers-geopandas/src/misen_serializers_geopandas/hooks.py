"""Hook implementations of misen_serializers_geopandas: registers its serializer and hasher (imports no GeoPandas)."""

from __future__ import annotations

from typing import Any

from misen.hookspecs import hookimpl

from misen_serializers_geopandas.serializer import CRSHasher, GeoSerializer


@hookimpl
def misen_add_serializers() -> list[Any]:
    return [GeoSerializer]


@hookimpl
def misen_add_hashers() -> list[Any]:
    return [CRSHasher()]
