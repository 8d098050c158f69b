"""Benchmark of the xarray serializer: a float64 Dataset (1 GiB by default) stored and loaded through a disk
workspace, beside xarray's own NetCDF save and load on the same machine.

Run ``python benchmarks/bench_xarray.py [--gib 1] [--dir PATH] [--repeat 3]``; prints one JSON object. Each
measurement runs in its own interpreter, xarray's NetCDF backend loaded (a tiny file written and read) before the
clock starts:

- ``Dataset.to_netcdf`` (engine netcdf4) + fsync, against ``misen.cache.store`` (to_netcdf, checksum, fsync,
  rename);
- ``xarray.load_dataset`` of that file (then a sum), against ``misen.cache.load_hash`` (manifest check, the
  same ``load_dataset``, the same sum). The page cache is dropped before each load where allowed (root), unless
  ``--warm``.

Budget (issue 18): store ≤ 1.3× xarray's save, load ≤ 1.3× xarray's load.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from _projects import alternating_rounds, best, fresh_python, paired_ratios, ratio

__all__ = ["bench_xarray"]

_STEP = r"""
import json, os, resource, sys, time
import numpy as np, xarray as xr
what, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

def dataset():
    # two variables on a (time, cell) grid with coordinates and attributes, n float64 values in all
    cells = 1024
    steps = n // (2 * cells)
    a = np.empty((steps, cells)); a[:] = 1.5
    b = np.empty((steps, cells)); b[:] = -0.5
    return xr.Dataset(
        {"t2m": (("time", "cell"), a, {"units": "K"}), "precip": (("time", "cell"), b, {"units": "mm"})},
        coords={"time": np.arange(steps, dtype="int64"), "cell": np.arange(cells, dtype="int32")},
        attrs={"title": "benchmark"},
    )

def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def total(ds):
    return float(ds["t2m"].values.sum() + ds["precip"].values.sum())

def warm():
    # xarray imports its NetCDF backend on first use: every step pays that before its clock starts
    path = os.path.join(root, "warm.nc")
    if not os.path.exists(path):
        xr.Dataset({"x": ("x", [1.0])}).to_netcdf(path, engine="netcdf4", format="NETCDF4")
    xr.load_dataset(path, engine="netcdf4")

out = {}
warm()
if what == "xr_save":
    ds = dataset(); t = time.perf_counter()
    path = os.path.join(root, "plain.nc")
    ds.to_netcdf(path, engine="netcdf4", format="NETCDF4")
    fd = os.open(path, os.O_RDONLY); os.fsync(fd); os.close(fd)
    out = {"s": time.perf_counter() - t, "bytes": os.path.getsize(path)}
elif what == "store":
    from misen import cache
    from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
    ws = DiskWorkspace(DiskWorkspaceSettings(directory=os.path.join(root, "ws")))
    ds = dataset(); cache.store(ws, xr.Dataset({"x": ("x", [1.0])})); t = time.perf_counter()
    h = cache.store(ws, ds)
    out = {"s": time.perf_counter() - t, "hash": h}
elif what == "xr_load":
    t = time.perf_counter(); ds = xr.load_dataset(os.path.join(root, "plain.nc"), engine="netcdf4"); s = total(ds)
    out = {"s": time.perf_counter() - t, "peak_mib": rss_mib(), "sum": s}
elif what == "load":
    from misen import cache
    from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
    ws = DiskWorkspace(DiskWorkspaceSettings(directory=os.path.join(root, "ws")))
    from misen.serializer import serializer_named; serializer_named("xarray")  # plugins found, as in a run
    t = time.perf_counter(); ds = cache.load_hash(ws, sys.argv[4]); s = total(ds)
    out = {"s": time.perf_counter() - t, "peak_mib": rss_mib(), "sum": s, "type": type(ds).__name__}
print(json.dumps(out))
"""


def bench_xarray(
    gib: float = 1.0, directory: str | None = None, repeat: int = 3, cold: bool = True
) -> dict[str, Any]:
    """Store and load a ``gib`` GiB float64 Dataset, against xarray's ``to_netcdf``+fsync and ``load_dataset``
    (best of ``repeat`` rounds each, alternating, since a shared virtual disk varies from one second to the next;
    the ratios are the median of the rounds' own ratios, see `_projects.ratio`).

    With ``cold`` the page cache is dropped before each load (where allowed); without it both loads read files
    still in the page cache, which measures decoding and misen's own work without the disk's noise."""
    n = str(int(gib * 2**30) // 8)

    def step(name: str, tmp: str, earlier: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return fresh_python(_STEP, name, tmp, n, *([earlier["store"]["hash"]] if name == "load" else []))

    plan = [("xr_save", False), ("store", False), ("xr_load", True), ("load", True)]
    rounds, dropped = alternating_rounds(step, plan, repeat=repeat, directory=directory, cold=cold)
    saves, stores, xr_loads, loads = (rounds[name] for name, _ in plan)
    for mine, theirs in zip(loads, xr_loads, strict=True):
        assert mine["sum"] == theirs["sum"], (mine["sum"], theirs["sum"])
    save, store, xr_load, load = best(saves), best(stores), best(xr_loads), best(loads)
    return {
        "bench": "xarray.Dataset",
        "gib": gib,
        "repeat": repeat,
        "file_mib": round(save["bytes"] / 2**20),
        "xr_save_fsync_s": round(save["s"], 3),
        "store_s": round(store["s"], 3),
        "store_ratio": ratio(saves, stores),  # the median of the rounds' own ratios
        "store_ratio_best": round(store["s"] / save["s"], 2),
        "store_ratio_rounds": paired_ratios(saves, stores),
        "xr_load_s": round(xr_load["s"], 3),
        "load_s": round(load["s"], 3),
        "load_ratio": ratio(xr_loads, loads),
        "load_ratio_best": round(load["s"] / xr_load["s"], 2),
        "load_ratio_rounds": paired_ratios(xr_loads, loads),
        "xr_load_peak_mib": round(xr_load["peak_mib"]),
        "load_peak_mib": round(load["peak_mib"]),
        "loaded_type": load["type"],
        "rounds_s": {
            "xr_save": [round(r["s"], 2) for r in saves],
            "store": [round(r["s"], 2) for r in stores],
            "xr_load": [round(r["s"], 2) for r in xr_loads],
            "load": [round(r["s"], 2) for r in loads],
        },
        "cold_cache": dropped,
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--dir", default=None, help="where to write (default: the system temp dir)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warm", action="store_true", help="keep the page cache before loads")
    args = parser.parse_args(argv)
    print(json.dumps(bench_xarray(args.gib, args.dir, args.repeat, cold=not args.warm)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
