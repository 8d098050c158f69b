"""Hook implementations of misen_serializers_charts: registers its serializers (imports neither Plotly nor Altair)."""

from __future__ import annotations

from typing import Any

from misen.hookspecs import hookimpl

from misen_serializers_charts.serializer import AltairSerializer, PlotlySerializer


@hookimpl
def misen_add_serializers() -> list[Any]:
    return [PlotlySerializer, AltairSerializer]
