"""Serializers for pandas: DataFrame and Series as Parquet (through pyarrow), pickle where Parquet would lose
something. pandas is imported inside `save`/`load` only.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

from misen.serializer import LoadContext, SaveContext, Serializer

__all__ = ["DataFrameSerializer", "SeriesSerializer", "parquet_obstacle"]

PARQUET_FILE = "frame.parquet"
PICKLE_FILE = "frame.pkl"
_SERIES_COLUMN = "__misen_series__"
# object columns whose values pyarrow stores and pandas reads back as they were
_SAFE_INFERRED = frozenset({"string", "empty", "bytes", "decimal", "boolean", "date", "time"})


def _object_ok(values: Any) -> bool:
    import pandas as pd

    if values.dtype != object:
        return True
    return pd.api.types.infer_dtype(values, skipna=True) in _SAFE_INFERRED


def _labels_ok(index: Any) -> bool:
    import pandas as pd

    if isinstance(index, pd.MultiIndex):
        return all(_labels_ok(level) for level in index.levels)
    return all(isinstance(label, str) for label in index)


def parquet_obstacle(frame: Any) -> str | None:
    """Why ``frame`` cannot go to Parquet without loss (None when it can). Checked before writing, so a frame
    that Parquet would silently change (mixed object columns, lists, non-string column labels) is pickled."""
    import pandas as pd

    if frame.columns.size == 0 and len(frame.index) == 0:
        return "empty frame"
    if not frame.flags.allows_duplicate_labels:
        return "allows_duplicate_labels=False"
    if not frame.columns.is_unique:
        return "duplicate column labels"
    if not isinstance(frame.columns, pd.RangeIndex) and not _labels_ok(frame.columns):
        return "column labels that are not strings"
    for position, dtype in enumerate(frame.dtypes):
        if dtype.kind == "O" and not _object_ok(frame.iloc[:, position]):
            return f"object column {frame.columns[position]!r} holds values Parquet cannot keep exactly"
    index = frame.index
    levels = [index.get_level_values(i) for i in range(index.nlevels)]
    if any(not _object_ok(level) for level in levels):
        return "an object index holding values Parquet cannot keep exactly"
    if frame.attrs:
        try:
            if json.loads(json.dumps(frame.attrs)) != frame.attrs:
                return "attrs that JSON cannot keep exactly"
        except (TypeError, ValueError):
            return "attrs that JSON cannot hold"
    return None


def _write(frame: Any, directory: Path) -> dict[str, Any]:
    """Write ``frame`` as Parquet when that keeps it, else pickle; return the metadata."""
    import pandas as pd

    reason = parquet_obstacle(frame)
    meta: dict[str, Any] = {"format": "parquet"}
    if reason is None:
        out = frame
        if isinstance(frame.columns, pd.RangeIndex):
            cols = frame.columns
            meta["columns_range"] = [cols.start, cols.stop, cols.step, cols.name]
            out = frame.set_axis([str(i) for i in range(frame.shape[1])], axis=1)
        # Parquet knows no seconds unit and no index frequency: record them and put them back on load
        meta["dtypes"] = {str(i): str(t) for i, t in enumerate(frame.dtypes) if str(t).endswith("[s]")}
        freq = getattr(frame.index, "freqstr", None)
        if freq:
            meta["index_freq"] = freq
        try:
            out.to_parquet(directory / PARQUET_FILE, engine="pyarrow")
            return meta
        except Exception as exc:  # complex numbers, sparse columns, extension types without an Arrow form
            reason = f"Parquet refused it ({type(exc).__name__}: {exc})"
            (directory / PARQUET_FILE).unlink(missing_ok=True)
    with open(directory / PICKLE_FILE, "wb") as f:
        pickle.dump(frame, f, protocol=5)
    return {"format": "pickle", "reason": reason}


def _read(directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
    import pandas as pd

    if meta.get("format") == "pickle":
        with open(directory / PICKLE_FILE, "rb") as f:
            return pickle.load(f)
    frame = pd.read_parquet(directory / PARQUET_FILE, engine="pyarrow", memory_map=ctx.mmap)
    cols = meta.get("columns_range")
    if cols is not None:
        frame = frame.set_axis(pd.RangeIndex(cols[0], cols[1], cols[2], name=cols[3]), axis=1)
    for position, dtype in meta.get("dtypes", {}).items():
        i = int(position)
        if str(frame.dtypes.iloc[i]) != dtype:
            frame.isetitem(i, frame.iloc[:, i].astype(dtype))
    freq = meta.get("index_freq")
    if freq:
        frame.index.freq = freq
    return frame


class DataFrameSerializer(Serializer):
    """`pandas.DataFrame` as Parquet (pyarrow), keeping index (MultiIndex too), dtypes and ``attrs``.

    Categoricals, time zones, nullable integer/boolean/string and pyarrow-backed dtypes, ``RangeIndex``
    columns and index frequencies all come back as they were. A frame that Parquet would change (object
    columns of mixed types or holding lists, non-string column labels, duplicate columns, complex numbers,
    sparse columns) is pickled instead, and the metadata says so: ``{"format": "pickle", "reason": ...}``.
    Subclasses (GeoDataFrame…) are declined and fall back to pickle, which keeps their type.
    """

    PLUGIN_NAME = "pandas.dataframe"
    TYPES = ("pandas.DataFrame", "pandas.core.frame.DataFrame")
    FORMAT_VERSION = 1

    def match(self, value: Any) -> bool:
        import pandas as pd

        return type(value) is pd.DataFrame

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        return _write(value, directory)

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        return _read(directory, meta, ctx)

    def preview(self, value: Any) -> Any:
        """The frame's shape and its first rows as an HTML table."""
        return frame_preview(value)


class SeriesSerializer(Serializer):
    """`pandas.Series` as a one-column Parquet file; its name (string, number or None) kept in the metadata."""

    PLUGIN_NAME = "pandas.series"
    TYPES = ("pandas.Series", "pandas.core.series.Series")
    FORMAT_VERSION = 1

    def match(self, value: Any) -> bool:
        import pandas as pd

        return type(value) is pd.Series

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        name = value.name
        if name is not None and type(name) not in (str, int, float, bool):
            with open(directory / PICKLE_FILE, "wb") as f:
                pickle.dump(value, f, protocol=5)
            return {"format": "pickle", "reason": f"a series name of type {type(name).__qualname__}"}
        frame = value.to_frame(_SERIES_COLUMN)
        frame.attrs = dict(value.attrs)
        meta = _write(frame, directory)
        meta["name"] = name
        return meta

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        frame = _read(directory, meta, ctx)
        if meta.get("format") == "pickle" and "name" not in meta:
            return frame
        series = frame.iloc[:, 0]
        series.name = meta.get("name")
        series.attrs = dict(frame.attrs)
        return series

    def preview(self, value: Any) -> Any:
        """The series' length, dtype and first values as an HTML table."""
        return frame_preview(value.to_frame())


def frame_preview(frame: Any, rows: int = 10) -> Any:
    """``rows × columns`` and the head of ``frame`` as an HTML table (pandas escapes every cell)."""
    from misen.preview import Preview

    head = frame.head(rows).to_html(max_cols=20, border=0, classes="frame")
    return Preview.html(f"<p>{frame.shape[0]:,} rows × {frame.shape[1]:,} columns</p>{head}")
