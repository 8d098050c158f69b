"""misen-serializers-geopandas: GeoDataFrames and GeoSeries as GeoParquet with CRS, index and dtypes kept, in
containers, in a fresh process, readable by GeoPandas alone; pyproj CRS as task arguments."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from misen.serializer import load_result, save_result, serializer_for
from misen.testing import SerializerContract
from misen.testing.processes import run_python, run_without_misen

gpd = pytest.importorskip("geopandas")
shapely = pytest.importorskip("shapely")
import geopandas.testing  # noqa: E402, F401  (makes gpd.testing available)
import pandas as pd  # noqa: E402


def frame() -> Any:
    from shapely.geometry import LineString, Point, Polygon

    return gpd.GeoDataFrame(
        {
            "name": ["a", "b", "c"],
            "value": pd.array([1, None, 3], dtype="Int64"),
            "when": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
            "geometry": [Point(0, 0), LineString([(0, 0), (1, 1)]), Polygon([(0, 0), (1, 0), (1, 1)])],
        },
        index=pd.Index([10, 20, 30], name="site"),
        crs="EPSG:3035",
    )


def roundtrip(value: Any, tmp_path: Path, name: str = "r") -> tuple[Any, dict[str, Any]]:
    _, manifest = save_result(value, tmp_path / name)
    return load_result(tmp_path / name), manifest


def test_geodataframes_round_trip_with_crs_index_and_dtypes(tmp_path: Path) -> None:
    gdf = frame()
    out, manifest = roundtrip(gdf, tmp_path)
    assert manifest["serializer"] == "geopandas" and manifest["meta"]["format"] == "geoparquet"
    assert list(manifest["files"]) == ["frame.parquet"]
    assert type(out) is gpd.GeoDataFrame and out.crs == gdf.crs and out.crs.to_epsg() == 3035
    gpd.testing.assert_geodataframe_equal(out, gdf, check_dtype=True, check_index_type=True)
    back = gpd.read_parquet(tmp_path / "r" / "frame.parquet")  # GeoPandas alone reads it
    gpd.testing.assert_geodataframe_equal(back, gdf)
    code = "import sys, geopandas as gpd; g = gpd.read_parquet(sys.argv[1]); print(g.crs.to_epsg(), list(g.index))"
    assert run_without_misen(code, str(tmp_path / "r" / "frame.parquet")).strip() == "3035 [10, 20, 30]"


def test_a_second_geometry_column_and_the_active_one(tmp_path: Path) -> None:
    gdf = frame().rename_geometry("shape")
    gdf["centroid"] = gdf.geometry.centroid
    out, _ = roundtrip(gdf, tmp_path)
    assert out.geometry.name == "shape" and isinstance(out["centroid"], gpd.GeoSeries)
    gpd.testing.assert_geodataframe_equal(out, gdf)


def test_geoseries_keep_their_name_and_crs(tmp_path: Path) -> None:
    series = frame().geometry.rename("outline").to_crs("EPSG:4326")
    out, manifest = roundtrip(series, tmp_path)
    assert manifest["meta"]["kind"] == "series" and type(out) is gpd.GeoSeries
    assert out.name == "outline" and out.crs == series.crs
    gpd.testing.assert_geoseries_equal(out, series, check_less_precise=False)
    assert list(out.index) == [10, 20, 30] and out.index.name == "site"


def test_frames_geoparquet_cannot_hold_are_pickled(tmp_path: Path) -> None:
    gdf = frame()
    gdf["mixed"] = [1, "two", 3.0]
    out, manifest = roundtrip(gdf, tmp_path)
    assert manifest["meta"]["format"] == "pickle" and "GeoParquet refused" in manifest["meta"]["reason"]
    gpd.testing.assert_geodataframe_equal(out, gdf)


def test_a_dict_of_frames_and_metrics(tmp_path: Path) -> None:
    result = {"sites": frame(), "buffers": frame().buffer(1.0), "area": 12.5}
    out, manifest = roundtrip(result, tmp_path)
    assert [leaf["serializer"] for leaf in manifest["meta"]["leaves"]] == ["geopandas", "geopandas"]
    gpd.testing.assert_geodataframe_equal(out["sites"], result["sites"])
    gpd.testing.assert_geoseries_equal(out["buffers"], result["buffers"])
    assert out["area"] == 12.5


def test_loads_in_a_fresh_process_with_only_this_plugin(tmp_path: Path) -> None:
    save_result(frame(), tmp_path / "r")
    code = (
        "from pathlib import Path\n"
        "import misen.session as s, misen_serializers_geopandas.hooks as h\n"
        "s.set_current_session(s.make_session(plugins=[h]))\n"
        "from misen.serializer import load_result\n"
        f"g = load_result(Path({str(tmp_path / 'r')!r}))\n"
        "print(type(g).__name__, g.crs.to_epsg(), list(g.index), g.geometry.iloc[1].wkt)\n"
    )
    stdout = run_python(code, env={**os.environ, "MISEN_NO_ENTRY_POINTS": "1"}, timeout=180)
    assert stdout.strip() == "GeoDataFrame 3035 [10, 20, 30] LINESTRING (0 0, 1 1)"


def test_crs_as_task_arguments() -> None:
    import pyproj
    from misen.hashing import hash_value

    assert hash_value(pyproj.CRS("EPSG:4326")) == hash_value(pyproj.CRS.from_epsg(4326))
    assert hash_value(pyproj.CRS("EPSG:4326")) != hash_value(pyproj.CRS("EPSG:3035"))


def test_registering_imports_no_geopandas() -> None:
    code = (
        "import sys, misen.session as p\n"
        "import misen_serializers_geopandas.hooks\n"
        "p.registry().serializers()\n"
        "bad = [m for m in ('geopandas', 'shapely', 'pyproj', 'pandas') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    run_python(code, timeout=120)


class TestGeoContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Any:
        return serializer_for(frame())

    @pytest.fixture
    def values(self) -> list[Any]:
        return [frame(), frame().geometry]

    def assert_equal(self, a: Any, b: Any) -> None:
        if isinstance(b, gpd.GeoDataFrame):
            gpd.testing.assert_geodataframe_equal(a, b)
        else:
            gpd.testing.assert_geoseries_equal(a, b)
            assert a.crs == b.crs
