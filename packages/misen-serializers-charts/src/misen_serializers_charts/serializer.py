"""Serializers for interactive charts stored as their JSON specs: Plotly figures (``figure.json``, Plotly's own
figure JSON) and Altair charts (``chart.json``, the Vega-Lite spec). The libraries are imported inside the
methods only; each is an optional dependency of this package.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from misen.errors import MisenError, ResultCorruptedError
from misen.serializer import LoadContext, SaveContext, Serializer

__all__ = ["AltairSerializer", "PlotlySerializer", "write_html"]


def _is_altair_chart(value: Any) -> bool:
    """Whether ``value`` is a top-level Altair chart (``Chart``, ``LayerChart``, ``HConcatChart``…)."""
    return any(
        base.__name__ == "TopLevelMixin" and base.__module__.startswith("altair.") for base in type(value).__mro__
    )


class PlotlySerializer(Serializer):
    """Plotly figures (`plotly.graph_objects.Figure` and ``FigureWidget``) as ``figure.json``.

    The file is ``fig.to_json()``, Plotly's own figure JSON (arrays as typed base64 blocks), read back with
    ``plotly.io.from_json`` (misen also turns the typed blocks back into NumPy arrays): the loaded figure has
    the same JSON spec, and its class (``Figure`` or ``FigureWidget``) is kept.
    """

    PLUGIN_NAME = "plotly.figure"
    TYPES = ("plotly.basedatatypes.BaseFigure",)
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        (directory / "figure.json").write_text(value.to_json(), encoding="utf-8")
        output = "FigureWidget" if type(value).__name__ == "FigureWidget" else "Figure"
        return {"output_type": output}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        import plotly.graph_objects as go

        spec = json.loads((directory / "figure.json").read_text(encoding="utf-8"))
        cls = go.FigureWidget if meta.get("output_type") == "FigureWidget" else go.Figure
        return cls(_decode_typed_arrays(spec))


def _decode_typed_arrays(obj: Any) -> Any:
    """Plotly's typed-array blocks (``{"dtype": "f8", "bdata": <base64>, "shape": "2, 3"}``) as NumPy arrays, so
    a loaded figure's ``data[0].x`` is an array again (``plotly.io.from_json`` leaves the blocks as dicts)."""
    if isinstance(obj, list):
        return [_decode_typed_arrays(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "bdata" in obj and "dtype" in obj and set(obj) <= {"bdata", "dtype", "shape"}:
        import numpy as np

        array = np.frombuffer(base64.b64decode(obj["bdata"]), dtype=np.dtype(obj["dtype"])).copy()
        shape = obj.get("shape")
        if shape:
            array = array.reshape([int(n) for n in str(shape).split(",")])
        return array
    return {k: _decode_typed_arrays(v) for k, v in obj.items()}


class AltairSerializer(Serializer):
    """Altair charts (``Chart``, ``LayerChart``, ``HConcatChart``, ``VConcatChart``, ``FacetChart``,
    ``RepeatChart``) as ``chart.json``, the chart's Vega-Lite spec with its inline data.

    Read back with ``altair.<ChartClass>.from_json``: the loaded chart has the same spec. A chart whose data is a
    URL keeps the URL, not the data.
    """

    PLUGIN_NAME = "altair.chart"
    TYPES = ("altair.utils.schemapi.SchemaBase",)
    FORMAT_VERSION = 1

    def match(self, value: Any) -> bool:
        return _is_altair_chart(value)

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        (directory / "chart.json").write_text(value.to_json(), encoding="utf-8")
        return {"class": type(value).__name__}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        import altair

        cls = getattr(altair, str(meta.get("class", "Chart")), None)
        if cls is None or not hasattr(cls, "from_json"):
            raise ResultCorruptedError(
                f"the chart stored at {directory} is an altair.{meta.get('class')}, which this Altair lacks"
            )
        return cls.from_json((directory / "chart.json").read_text(encoding="utf-8"))


def write_html(chart: Any, path: str | Path) -> Path:
    """Write a Plotly figure or an Altair chart (a task's ``result()``) as an HTML page to open in a browser.

    A Plotly page embeds plotly.js and opens offline; an Altair page loads Vega and Vega-Lite from their CDN
    when opened (Altair's own ``chart.save``).

    Example:
        ``write_html(plot_task.result(), "loss.html")``
    """
    path = Path(path)
    module = type(chart).__module__.partition(".")[0]
    if module == "plotly" and hasattr(chart, "write_html"):
        chart.write_html(str(path), include_plotlyjs=True, full_html=True)
    elif _is_altair_chart(chart):
        chart.save(str(path), format="html")
    else:
        raise MisenError(
            f"write_html takes a Plotly figure or an Altair chart, not a {type(chart).__module__}."
            f"{type(chart).__qualname__}"
        )
    return path
