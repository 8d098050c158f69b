"""Hook implementations of misen_serializers_pandas: registers its serializers (imports no pandas)."""

from __future__ import annotations

from typing import Any

from misen import hookimpl

from misen_serializers_pandas.arrow import ArrowSerializer
from misen_serializers_pandas.hashers import PandasHasher
from misen_serializers_pandas.polars import PolarsSerializer
from misen_serializers_pandas.serializer import DataFrameSerializer, SeriesSerializer


@hookimpl
def misen_add_serializers() -> list[Any]:
    return [DataFrameSerializer, SeriesSerializer, ArrowSerializer, PolarsSerializer]


@hookimpl
def misen_add_hashers() -> list[Any]:
    return [PandasHasher()]
