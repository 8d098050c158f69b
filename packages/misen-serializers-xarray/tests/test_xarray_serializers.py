"""misen-serializers-xarray: Datasets and DataArrays as NetCDF-4 with coords, attrs and encodings kept, in
containers, in a fresh process, readable by xarray alone."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from misen.serializer import load_result, save_result, serializer_for
from misen.testing import SerializerContract
from misen.testing.processes import run_python, run_without_misen

xr = pytest.importorskip("xarray")
pytest.importorskip("netCDF4")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def dataset() -> Any:
    rng = np.random.default_rng(0)
    time = pd.date_range("2024-01-01", periods=4, freq="D")
    ds = xr.Dataset(
        {
            "temperature": (("time", "lat", "lon"), rng.standard_normal((4, 3, 2)), {"units": "K"}),
            "counts": (("lat",), np.array([1, 2, 3], dtype="int32")),
            "flag": (("time",), np.array([True, False, True, True])),
            "station": (("lat",), np.array(["a", "bb", "ccc"])),
        },
        coords={
            "time": time,
            "lat": ("lat", [10.0, 20.0, 30.0], {"standard_name": "latitude"}),
            "lon": [1.5, 2.5],
            "elevation": (("lat", "lon"), rng.random((3, 2))),
        },
        attrs={"title": "test run", "version": 3, "weights": np.array([0.5, 0.25])},
    )
    ds["packed"] = (("time",), np.array([1.5, 2.25, np.nan, 4.0]))
    ds["packed"].encoding = {"dtype": "int16", "scale_factor": 0.25, "_FillValue": -999}
    ds["temperature"].encoding = {"zlib": True, "complevel": 4}
    ds["time"].encoding = {"units": "hours since 2000-01-01", "calendar": "proleptic_gregorian"}
    return ds


def roundtrip(value: Any, tmp_path: Path, name: str = "r") -> tuple[Any, dict[str, Any]]:
    _, manifest = save_result(value, tmp_path / name)
    return load_result(tmp_path / name), manifest


def test_datasets_round_trip_identical_with_encodings(tmp_path: Path) -> None:
    ds = dataset()
    out, manifest = roundtrip(ds, tmp_path)
    assert manifest["serializer"] == "xarray" and manifest["meta"] == {"kind": "dataset", "format": "netcdf4"}
    assert list(manifest["files"]) == ["data.nc"]
    xr.testing.assert_identical(out, ds)
    # strings come back as str values: a NumPy "U" array, or an object array with older xarray
    assert list(out["station"].values) == ["a", "bb", "ccc"]
    assert out["flag"].dtype == bool and out["counts"].dtype == np.int32 and out["station"].dtype.kind in "UO"
    packed = out["packed"].encoding
    assert (packed["dtype"], packed["scale_factor"], packed["_FillValue"]) == (np.dtype("int16"), 0.25, -999)
    assert out["temperature"].encoding["zlib"] and out["temperature"].encoding["complevel"] == 4
    assert out["time"].encoding["units"] == "hours since 2000-01-01"
    np.testing.assert_array_equal(out.attrs["weights"], [0.5, 0.25])
    xr.testing.assert_identical(xr.load_dataset(tmp_path / "r" / "data.nc"), ds)  # xarray alone reads it
    code = "import sys, xarray as xr; ds = xr.load_dataset(sys.argv[1]); print(dict(ds.sizes), ds.attrs['title'])"
    out_text = run_without_misen(code, str(tmp_path / "r" / "data.nc"))  # misen not even importable
    assert out_text.strip() == "{'time': 4, 'lat': 3, 'lon': 2} test run"


@pytest.mark.parametrize("name", ["temperature", None])
def test_dataarrays_keep_name_coords_and_attrs(name: str | None, tmp_path: Path) -> None:
    da = dataset()["temperature"].rename(name)
    out, manifest = roundtrip(da, tmp_path)
    assert manifest["meta"]["kind"] == "dataarray" and type(out) is xr.DataArray
    xr.testing.assert_identical(out, da)
    assert out.name == name and "elevation" in out.coords


def test_what_netcdf_cannot_hold_is_pickled(tmp_path: Path) -> None:
    ds = xr.Dataset({"a": ("x", [1, 2])}, attrs={"config": {"lr": 0.1}})
    out, manifest = roundtrip(ds, tmp_path)
    assert manifest["meta"]["format"] == "pickle" and "NetCDF refused" in manifest["meta"]["reason"]
    xr.testing.assert_identical(out, ds)


def test_a_dict_of_datasets_and_metrics(tmp_path: Path) -> None:
    result = {"field": dataset(), "mean": dataset()["temperature"].mean("time"), "rmse": 0.3}
    out, manifest = roundtrip(result, tmp_path)
    assert [leaf["serializer"] for leaf in manifest["meta"]["leaves"]] == ["xarray", "xarray"]
    xr.testing.assert_identical(out["field"], result["field"])
    xr.testing.assert_identical(out["mean"], result["mean"])
    assert out["rmse"] == 0.3


def test_loads_in_a_fresh_process_with_only_this_plugin(tmp_path: Path) -> None:
    save_result(dataset(), tmp_path / "r")
    code = (
        "from pathlib import Path\n"
        "import misen.session as s, misen_serializers_xarray.hooks as h\n"
        "s.set_current_session(s.make_session(plugins=[h]))\n"
        "from misen.serializer import load_result\n"
        f"ds = load_result(Path({str(tmp_path / 'r')!r}))\n"
        "print(type(ds).__name__, dict(ds.sizes), ds.attrs['title'].replace(' ', '_'), ds.temperature.attrs['units'])\n"
    )
    stdout = run_python(code, env={**os.environ, "MISEN_NO_ENTRY_POINTS": "1"}, timeout=180)
    assert stdout.strip() == "Dataset {'time': 4, 'lat': 3, 'lon': 2} test_run K"


def test_registering_imports_no_xarray() -> None:
    code = (
        "import sys, misen.session as p\n"
        "import misen_serializers_xarray.hooks\n"
        "p.registry().serializers()\n"
        "bad = [m for m in ('xarray', 'netCDF4', 'numpy') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    run_python(code, timeout=120)


class TestXarrayContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Any:
        return serializer_for(xr.Dataset())

    @pytest.fixture
    def values(self) -> list[Any]:
        return [dataset(), dataset()["temperature"]]

    def assert_equal(self, a: Any, b: Any) -> None:
        xr.testing.assert_identical(a, b)


_PROJECT_SCRIPT = """
import numpy as np, xarray as xr
from misen import Task, meta
from misen.runner import run

@meta(id="XRFIELD001", cache=True)
def simulate(steps: int) -> xr.Dataset:
    return xr.Dataset({"u": (("t", "x"), np.arange(steps * 3.0).reshape(steps, 3))}, attrs={"steps": steps})

@meta(id="XRMEAN0001", cache=True)
def summarize(field: xr.Dataset) -> dict:
    return {"mean": field["u"].mean("t"), "max": float(field["u"].max())}

top = Task(summarize, field=Task(simulate, steps=4).T)
report = run(top, executor="in-process", workspace="disk")
assert report.ok, report
out = top.result(workspace="disk")
field = Task(simulate, steps=4).result(workspace="disk")
import json
print(json.dumps([type(field).__name__, int(field.attrs["steps"]), out["mean"].values.tolist(), out["max"]]))
"""


def test_tasks_returning_datasets_run_and_store_netcdf(tmp_path: Path) -> None:
    pytest.importorskip("misen_workspace_disk")
    import json

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "xrproj"\nversion = "0"\n')
    (tmp_path / "sim.py").write_text(_PROJECT_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISEN_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    stdout = run_python((tmp_path / "sim.py").read_text(), cwd=tmp_path, env=env)
    kind, steps, mean, biggest = json.loads(stdout.strip().splitlines()[-1])
    assert (kind, steps, mean, biggest) == ("Dataset", 4, [4.5, 5.5, 6.5], 11.0)
    serializers = sorted(
        json.loads(p.read_text())["serializer"] for p in (tmp_path / ".misen").rglob("manifest.json")
    )
    assert serializers == ["container", "xarray"]  # the dict's DataArray is a leaf of the container
    assert len(list((tmp_path / ".misen").rglob("data.nc"))) == 2
