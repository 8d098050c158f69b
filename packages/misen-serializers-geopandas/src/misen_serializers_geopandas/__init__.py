"""misen serializers for GeoPandas (GeoParquet, CRS kept) and a hasher for pyproj CRS arguments."""

from __future__ import annotations

__all__: list[str] = []
