"""misen serializers for xarray `DataArray` and `Dataset`, stored as NetCDF-4 files."""

from __future__ import annotations

__all__: list[str] = []
