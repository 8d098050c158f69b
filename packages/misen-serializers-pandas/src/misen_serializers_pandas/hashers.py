"""Hasher for pandas scalars as task arguments: timestamps, timedeltas, periods, intervals and NaT."""

from __future__ import annotations

from typing import Any

from misen.errors import UnhashableArgumentError
from misen.hashing import Hasher

__all__ = ["PandasHasher"]


class PandasHasher(Hasher):
    """`pandas.Timestamp` (time zone kept by name), `pandas.Timedelta`, `pandas.Period`, `pandas.Interval`, NaT.

    Frames and series are refused as arguments: they are data, which should flow in as another task's output.
    """

    PLUGIN_NAME = "pandas"
    TYPES = (
        "pandas.Timestamp",
        "pandas._libs.tslibs.timestamps.Timestamp",
        "pandas.Timedelta",
        "pandas._libs.tslibs.timedeltas.Timedelta",
        "pandas.Period",
        "pandas._libs.tslibs.period.Period",
        "pandas.Interval",
        "pandas._libs.interval.Interval",
        "pandas.api.typing.NaTType",
        "pandas._libs.tslibs.nattype.NaTType",
    )

    def reduce(self, value: Any) -> Any:
        import pandas as pd

        if value is pd.NaT:
            return "NaT"
        if isinstance(value, pd.Timestamp):
            return (value.isoformat(), str(value.tz) if value.tz is not None else None)
        if isinstance(value, pd.Timedelta):
            return value.isoformat()
        if isinstance(value, pd.Period):
            return (str(value), value.freqstr)
        if isinstance(value, pd.Interval):
            return (value.left, value.right, value.closed)
        raise UnhashableArgumentError(f"cannot hash a value of type {type(value).__qualname__}")
