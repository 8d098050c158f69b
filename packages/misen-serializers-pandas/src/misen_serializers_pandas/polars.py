"""Serializer for polars DataFrames and Series: the Arrow IPC file format (polars' own), memory-mapped on load."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from misen.serializer import LoadContext, SaveContext, Serializer

__all__ = ["PolarsSerializer"]

IPC_FILE = "frame.arrow"


class PolarsSerializer(Serializer):
    """`polars.DataFrame` and `polars.Series` as uncompressed Arrow IPC (every polars dtype but ``Object``).

    Frames with ``Object`` columns, which IPC (and polars' own pickling) cannot hold, are pickled column by
    column, ``Object`` columns as Python lists, and the metadata says so.
    """

    PLUGIN_NAME = "polars.dataframe"
    TYPES = (
        "polars.dataframe.frame.DataFrame",
        "polars.series.series.Series",
        "polars.DataFrame",
        "polars.Series",
    )
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import polars as pl

        kind = "series" if isinstance(value, pl.Series) else "frame"
        frame = value.to_frame() if kind == "series" else value
        if any(dtype == pl.Object for dtype in frame.dtypes):
            # neither IPC nor polars' own pickling takes Object columns: pickle them as Python lists
            columns = [
                (s.name, s.to_list()) if s.dtype == pl.Object else (s.name, s) for s in frame.get_columns()
            ]
            with open(directory / "frame.pkl", "wb") as f:
                pickle.dump(columns, f, protocol=5)
            return {"kind": kind, "format": "pickle", "reason": "Object columns"}
        frame.write_ipc(directory / IPC_FILE, compression="uncompressed")
        return {"kind": kind, "format": "ipc"}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        import polars as pl

        if meta.get("format") == "pickle":
            with open(directory / "frame.pkl", "rb") as f:
                columns = pickle.load(f)
            series = [
                c if isinstance(c, pl.Series) else pl.Series(name, c, dtype=pl.Object) for name, c in columns
            ]
            frame = pl.DataFrame(series)
            return series[0] if meta.get("kind") == "series" else frame
        frame = pl.read_ipc(directory / IPC_FILE)  # polars maps uncompressed IPC files itself
        return frame.to_series(0) if meta.get("kind") == "series" else frame
