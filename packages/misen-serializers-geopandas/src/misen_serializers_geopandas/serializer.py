"""Serializer for `geopandas.GeoDataFrame` and `geopandas.GeoSeries` as GeoParquet, and a hasher for
`pyproj.CRS` task arguments. GeoPandas and pyproj are imported inside the methods only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from misen.hashing import Hasher
from misen.serializer import LoadContext, SaveContext, Serializer
from misen.stdlib import PickleSerializer

__all__ = ["CRSHasher", "GeoSerializer"]

PARQUET_FILE = "frame.parquet"
#: Column name used for a GeoSeries while it is stored as a one-column frame.
SERIES_COLUMN = "geometry"


class GeoSerializer(Serializer):
    """`geopandas.GeoDataFrame` and `geopandas.GeoSeries` as ``frame.parquet``, GeoParquet written by
    ``to_parquet`` (geometries as WKB, the CRS as PROJJSON in the file's ``geo`` metadata).

    Read back with ``geopandas.read_parquet``: geometries, CRS, index, dtypes of the other columns, the active
    geometry column and every other geometry column come back. A GeoSeries is stored as a one-column frame and
    its name is kept in the metadata. A frame GeoParquet cannot hold (non-string column names, mixed-type object
    columns) is pickled, and the metadata says why.
    """

    PLUGIN_NAME = "geopandas"
    TYPES = ("geopandas.geodataframe.GeoDataFrame", "geopandas.geoseries.GeoSeries")
    FORMAT_VERSION = 1
    # above pandas' own serializers, which claim the base classes
    PRIORITY = 10

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import geopandas

        series = isinstance(value, geopandas.GeoSeries)
        meta: dict[str, Any] = {"kind": "series" if series else "frame"}
        frame = value.to_frame(SERIES_COLUMN) if series else value
        if series:
            meta["name"] = value.name
        try:
            frame.to_parquet(directory / PARQUET_FILE, index=None, compression="snappy")
            return {**meta, "format": "geoparquet"}
        except Exception as exc:
            (directory / PARQUET_FILE).unlink(missing_ok=True)
            reason = f"GeoParquet refused it ({type(exc).__name__}: {exc})"
        pickled = PickleSerializer().save(value, directory, ctx)
        return {**meta, "format": "pickle", "engine": pickled["engine"], "reason": reason}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        if meta.get("format") == "pickle":
            return PickleSerializer().load(directory, {"engine": meta.get("engine", "pickle")}, ctx)
        import geopandas

        frame = geopandas.read_parquet(directory / PARQUET_FILE)
        if meta.get("kind") == "series":
            series = frame.geometry
            series.name = meta.get("name")
            return series
        return frame


class CRSHasher(Hasher):
    """`pyproj.CRS` as a task argument (the projection to reproject into), by its PROJJSON description: two
    objects describing the same CRS hash alike, whichever way they were written (``"EPSG:4326"`` or
    ``CRS.from_epsg(4326)``)."""

    PLUGIN_NAME = "pyproj"
    TYPES = ("pyproj.crs.crs.CRS",)

    def reduce(self, value: Any) -> Any:
        return value.to_json()
