"""misen-serializers-charts: Plotly figures and Altair charts as their JSON specs, in containers, in a fresh
process, readable by the libraries alone; `write_html`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from misen.serializer import load_result, save_result, serializer_for
from misen.testing import SerializerContract
from misen.testing.processes import run_python, run_without_misen
from misen_serializers_charts import write_html


def plotly_figure() -> Any:
    go = pytest.importorskip("plotly.graph_objects")
    import numpy as np

    fig = go.Figure(go.Scatter(x=np.arange(5), y=np.linspace(0, 1, 5), name="loss", mode="lines"))
    fig.add_bar(x=["a", "b"], y=[3, 1])
    fig.update_layout(title="training", xaxis_title="epoch")
    return fig


def altair_charts() -> list[Any]:
    alt = pytest.importorskip("altair")
    import pandas as pd

    frame = pd.DataFrame({"epoch": [0, 1, 2], "loss": [1.0, 0.5, 0.25], "split": ["train", "train", "val"]})
    base = alt.Chart(frame).mark_line().encode(x="epoch:Q", y="loss:Q", color="split:N")
    return [base.properties(title="loss"), base + base.mark_point(), base | base, base.facet("split:N")]


def spec(value: Any) -> Any:
    return json.loads(value.to_json())


def roundtrip(value: Any, tmp_path: Path, name: str = "r") -> tuple[Any, dict[str, Any]]:
    _, manifest = save_result(value, tmp_path / name)
    return load_result(tmp_path / name), manifest


def test_plotly_figures_round_trip_as_their_json(tmp_path: Path) -> None:
    fig = plotly_figure()
    out, manifest = roundtrip(fig, tmp_path)
    assert manifest["serializer"] == "plotly.figure" and list(manifest["files"]) == ["figure.json"]
    assert type(out) is type(fig) and spec(out) == spec(fig)
    assert list(out.data[0].x) == [0, 1, 2, 3, 4] and out.layout.title.text == "training"
    import plotly.io as pio

    assert spec(pio.read_json(tmp_path / "r" / "figure.json")) == spec(fig)  # Plotly alone reads it
    code = "import sys, plotly.io as pio; f = pio.read_json(sys.argv[1]); print(f.layout.title.text, len(f.data))"
    assert run_without_misen(code, str(tmp_path / "r" / "figure.json")).split() == ["training", str(len(fig.data))]


@pytest.mark.parametrize("index", range(4))
def test_altair_charts_round_trip_as_their_vega_lite_spec(index: int, tmp_path: Path) -> None:
    chart = altair_charts()[index]
    out, manifest = roundtrip(chart, tmp_path)
    assert manifest["serializer"] == "altair.chart" and list(manifest["files"]) == ["chart.json"]
    assert type(out) is type(chart) and spec(out) == spec(chart)
    import altair as alt

    text = (tmp_path / "r" / "chart.json").read_text()
    assert spec(getattr(alt, type(chart).__name__).from_json(text)) == spec(chart)  # Altair alone reads it


def test_a_dict_of_figures_and_metrics(tmp_path: Path) -> None:
    report = {"curve": plotly_figure(), "chart": altair_charts()[0], "best": 0.25}
    out, manifest = roundtrip(report, tmp_path)
    assert manifest["serializer"] == "container"
    assert [leaf["serializer"] for leaf in manifest["meta"]["leaves"]] == ["plotly.figure", "altair.chart"]
    assert spec(out["curve"]) == spec(report["curve"]) and spec(out["chart"]) == spec(report["chart"])
    assert out["best"] == 0.25


def test_write_html(tmp_path: Path) -> None:
    page = write_html(plotly_figure(), tmp_path / "fig.html").read_text()
    assert "<html>" in page and "training" in page and "plotly" in page.lower()
    page = write_html(altair_charts()[0], tmp_path / "chart.html").read_text()
    assert "vegaEmbed" in page and '"loss"' in page
    from misen.errors import MisenError

    with pytest.raises(MisenError, match="takes a Plotly figure or an Altair chart"):
        write_html({"not": "a chart"}, tmp_path / "x.html")


def test_loads_in_a_fresh_process_with_only_this_plugin(tmp_path: Path) -> None:
    fig = plotly_figure()
    save_result(fig, tmp_path / "p")
    save_result(altair_charts()[1], tmp_path / "a")
    code = (
        "import json; from pathlib import Path\n"
        "import misen.session as s, misen_serializers_charts.hooks as h\n"
        "s.set_current_session(s.make_session(plugins=[h]))\n"
        "from misen.serializer import load_result\n"
        f"fig = load_result(Path({str(tmp_path / 'p')!r}))\n"
        f"chart = load_result(Path({str(tmp_path / 'a')!r}))\n"
        "print(type(fig).__name__, fig.layout.title.text, type(chart).__name__)\n"
    )
    stdout = run_python(code, env={**os.environ, "MISEN_NO_ENTRY_POINTS": "1"}, timeout=180)
    assert stdout.split() == ["Figure", "training", "LayerChart"]


def test_registering_imports_neither_library() -> None:
    code = (
        "import sys, misen.session as p\n"
        "import misen_serializers_charts.hooks\n"
        "p.registry().serializers()\n"
        "bad = [m for m in ('plotly', 'altair') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    run_python(code, timeout=120)


class TestPlotlyContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Any:
        return serializer_for(plotly_figure())

    @pytest.fixture
    def values(self) -> list[Any]:
        return [plotly_figure()]

    def assert_equal(self, a: Any, b: Any) -> None:
        assert spec(a) == spec(b)


class TestAltairContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Any:
        return serializer_for(altair_charts()[0])

    @pytest.fixture
    def values(self) -> list[Any]:
        return altair_charts()

    def assert_equal(self, a: Any, b: Any) -> None:
        assert spec(a) == spec(b)
