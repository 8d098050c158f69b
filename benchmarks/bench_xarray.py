"""Benchmark of the xarray serializer: a float64 Dataset (1 GiB by default) stored and loaded through a disk
workspace, beside xarray's own NetCDF save and load on the same machine.

Run ``python benchmarks/bench_xarray.py [--gib 1] [--dir PATH] [--repeat 3]``; prints one JSON object. Each
measurement runs in its own interpreter:

- ``Dataset.to_netcdf`` (engine netcdf4) + fsync, against ``DiskWorkspace.store`` (to_netcdf, checksum, fsync,
  rename);
- ``xarray.load_dataset`` of that file (then a sum), against ``DiskWorkspace.load_hash`` (manifest check, the
  same ``load_dataset``, the same sum). The page cache is dropped before each load where allowed (root), unless
  ``--warm``.

Budget (issue 18): store ≤ 1.3× xarray's save, load ≤ 1.3× xarray's load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

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

out = {}
if what == "xr_save":
    ds = dataset(); t = time.perf_counter()
    path = os.path.join(root, "plain.nc")
    ds.to_netcdf(path, engine="netcdf4", format="NETCDF4")
    fd = os.open(path, os.O_RDONLY); os.fsync(fd); os.close(fd)
    out = {"s": time.perf_counter() - t, "bytes": os.path.getsize(path)}
elif what == "store":
    from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
    ws = DiskWorkspace(DiskWorkspaceSettings(directory=os.path.join(root, "ws")))
    ds = dataset(); ws.store(xr.Dataset({"x": ("x", [1.0])})); t = time.perf_counter()
    h = ws.store(ds)
    out = {"s": time.perf_counter() - t, "hash": h}
elif what == "xr_load":
    t = time.perf_counter(); ds = xr.load_dataset(os.path.join(root, "plain.nc"), engine="netcdf4"); s = total(ds)
    out = {"s": time.perf_counter() - t, "peak_mib": rss_mib(), "sum": s}
elif what == "load":
    from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
    ws = DiskWorkspace(DiskWorkspaceSettings(directory=os.path.join(root, "ws")))
    from misen.serializer import serializer_named; serializer_named("xarray")  # plugins found, as in a run
    t = time.perf_counter(); ds = ws.load_hash(sys.argv[4]); s = total(ds)
    out = {"s": time.perf_counter() - t, "peak_mib": rss_mib(), "sum": s, "type": type(ds).__name__}
print(json.dumps(out))
"""


def _drop_caches() -> bool:
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def _step(*args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", _STEP, *args], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _best(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    return min(rounds, key=lambda r: r["s"])


def bench_xarray(
    gib: float = 1.0, directory: str | None = None, repeat: int = 3, cold: bool = True
) -> dict[str, Any]:
    """Store and load a ``gib`` GiB float64 Dataset, against xarray's ``to_netcdf``+fsync and ``load_dataset``
    (best of ``repeat`` rounds each, alternating, since a shared virtual disk varies from one second to the next).

    With ``cold`` the page cache is dropped before each load (where allowed); without it both loads read files
    still in the page cache, which measures decoding and misen's own work without the disk's noise."""
    n = str(int(gib * 2**30) // 8)
    saves, stores, xr_loads, loads = [], [], [], []
    dropped = False
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            saves.append(_step("xr_save", tmp, n))
            stores.append(_step("store", tmp, n))
            if cold:
                dropped = _drop_caches()
            xr_loads.append(_step("xr_load", tmp, n))
            if cold:
                _drop_caches()
            loads.append(_step("load", tmp, n, stores[-1]["hash"]))
            assert loads[-1]["sum"] == xr_loads[-1]["sum"]
    save, store, xr_load, load = _best(saves), _best(stores), _best(xr_loads), _best(loads)
    return {
        "bench": "xarray.Dataset",
        "gib": gib,
        "repeat": repeat,
        "file_mib": round(save["bytes"] / 2**20),
        "xr_save_fsync_s": round(save["s"], 3),
        "store_s": round(store["s"], 3),
        "store_ratio": round(store["s"] / save["s"], 2),
        "xr_load_s": round(xr_load["s"], 3),
        "load_s": round(load["s"], 3),
        "load_ratio": round(load["s"] / xr_load["s"], 2),
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
