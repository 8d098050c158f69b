"""misen serializers for pandas DataFrames/Series (Parquet), pyarrow tables and polars frames (Arrow IPC)."""

from __future__ import annotations

__all__: list[str] = []
