"""Serializer for `xarray.DataArray` and `xarray.Dataset` as one NetCDF-4 file (``data.nc``), written with
xarray's ``to_netcdf`` through the netCDF4 library and read back with ``xarray.load_dataset``.

Why NetCDF-4 rather than Zarr: a result is stored and loaded whole, and misen checksums every file of it; NetCDF
is one self-describing file (Zarr writes a file per chunk and per metadata entry, thousands for a large dataset),
readable by every tool of the field (``ncdump``, CDO, NCO, Panoply, MATLAB, xarray) and by xarray without extra
libraries. Zarr's strengths, partial reads and parallel writes to object stores, do not help a whole-result store.
xarray is imported inside `save`/`load` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from misen.serializer import LoadContext, SaveContext, Serializer
from misen.stdlib import PickleSerializer

__all__ = ["ENGINE", "XarraySerializer"]

NETCDF_FILE = "data.nc"
#: The xarray backend that writes and reads the file (the netCDF-C library's Python binding).
ENGINE = "netcdf4"


class XarraySerializer(Serializer):
    """`xarray.Dataset` and `xarray.DataArray` as ``data.nc`` (NetCDF-4/HDF5).

    Data variables, coordinates (dimension and non-dimension), attributes of the dataset and of every variable,
    dtypes, and the encodings set on variables (``dtype``, ``scale_factor``, ``_FillValue``, ``zlib`` and
    ``complevel``, time ``units`` and ``calendar``…) come back: the loaded value is ``identical`` to the stored
    one. A DataArray keeps its name (``None`` too). Loading reads the whole file into memory and closes it.

    What NetCDF cannot hold (attributes that are dicts or ``None``, object arrays of mixed types, non-string
    variable names) makes the value pickled instead, with the reason in the metadata.
    """

    PLUGIN_NAME = "xarray"
    TYPES = ("xarray.core.dataset.Dataset", "xarray.core.dataarray.DataArray")
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import xarray

        kind = "dataarray" if isinstance(value, xarray.DataArray) else "dataset"
        path = directory / NETCDF_FILE
        try:
            value.to_netcdf(path, engine=ENGINE, format="NETCDF4")
            return {"kind": kind, "format": "netcdf4"}
        except Exception as exc:
            path.unlink(missing_ok=True)
            reason = f"NetCDF refused it ({type(exc).__name__}: {exc})"
        pickled = PickleSerializer().save(value, directory, ctx)
        return {"kind": kind, "format": "pickle", "engine": pickled["engine"], "reason": reason}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        if meta.get("format") == "pickle":
            return PickleSerializer().load(directory, {"engine": meta.get("engine", "pickle")}, ctx)
        import xarray

        path = directory / NETCDF_FILE
        if meta.get("kind") == "dataarray":
            return xarray.load_dataarray(path, engine=ENGINE)
        return xarray.load_dataset(path, engine=ENGINE)
