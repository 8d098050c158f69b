"""Benchmark of the NumPy serializer (design.md §6): a 1 GiB array stored and loaded through a disk workspace.

Run ``python benchmarks/bench_numpy.py [--gib 1] [--dir PATH]``; prints one JSON object. Each measurement runs in
its own interpreter so its peak memory (``ru_maxrss``) is its own:

- ``np.save`` + fsync of the array, against ``DiskWorkspace.store`` (serialize, checksum, fsync, rename);
- ``np.load`` of that ``.npy`` (then a sum, touching every page), against ``DiskWorkspace.load_hash`` (manifest
  check, memory-mapped load, same sum). Page cache is dropped before each load where allowed (root).
- the same load once the record of the store's checksum is gone (``load_unrecorded``): the first load after
  the file changed, which checksums every byte before mapping it.

Budget: store ≤ 1.3× ``np.save``+fsync, load ≤ 1.3× ``np.load``, load peak memory ≈ 1× the array.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

__all__ = ["bench_numpy"]

_STEP = r"""
import json, os, resource, sys, time
import numpy as np
what, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

def array():
    a = np.empty(n, dtype=np.float64)
    a[:] = 1.5
    return a

def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

out = {}
if what == "np_save":
    a = array(); base = rss_mib(); t = time.perf_counter()
    with open(os.path.join(root, "plain.npy"), "wb") as f:
        np.save(f, a); f.flush(); os.fsync(f.fileno())
    out = {"s": time.perf_counter() - t, "extra_mib": rss_mib() - base}
elif what == "store":
    from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
    ws = DiskWorkspace(DiskWorkspaceSettings(directory=os.path.join(root, "ws")))
    a = array(); ws.store(np.zeros(1)); base = rss_mib(); t = time.perf_counter()
    h = ws.store(a)
    out = {"s": time.perf_counter() - t, "extra_mib": rss_mib() - base, "hash": h}
elif what == "np_load":
    t = time.perf_counter(); a = np.load(os.path.join(root, "plain.npy")); s = float(a.sum())
    out = {"s": time.perf_counter() - t, "peak_mib": rss_mib(), "sum": s}
elif what in ("load", "load_unrecorded"):
    from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
    ws = DiskWorkspace(DiskWorkspaceSettings(directory=os.path.join(root, "ws")))
    if what == "load_unrecorded":  # no record of an earlier verification: every byte is checksummed first
        from misen.integrity import VERIFIED
        record = ws.open_result(sys.argv[4]) / VERIFIED
        if record.exists():
            record.unlink()
    from misen.serializer import serializer_named; serializer_named("numpy.ndarray")  # plugins found, as in a run
    t = time.perf_counter(); a = ws.load_hash(sys.argv[4]); s = float(a.sum())
    out = {"s": time.perf_counter() - t, "peak_mib": rss_mib(), "sum": s, "type": type(a).__name__}
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


def bench_numpy(gib: float = 1.0, directory: str | None = None, repeat: int = 3) -> dict[str, Any]:
    """Store and load a ``gib`` GiB float64 array, against ``np.save``+fsync and ``np.load`` (best of
    ``repeat`` rounds each, alternating, since a shared virtual disk varies a lot from one second to the next)."""
    n = str(int(gib * 2**30) // 8)
    saves, stores, np_loads, loads, unrecorded = [], [], [], [], []
    cold = False
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            saves.append(_step("np_save", tmp, n))
            stores.append(_step("store", tmp, n))
            cold = _drop_caches()
            np_loads.append(_step("np_load", tmp, n))
            _drop_caches()
            loads.append(_step("load", tmp, n, stores[-1]["hash"]))
            _drop_caches()
            unrecorded.append(_step("load_unrecorded", tmp, n, stores[-1]["hash"]))
    save, store, np_load, load = _best(saves), _best(stores), _best(np_loads), _best(loads)
    mib = int(gib * 1024)
    return {
        "bench": "numpy.ndarray",
        "gib": gib,
        "repeat": repeat,
        "np_save_fsync_s": round(save["s"], 3),
        "store_s": round(store["s"], 3),
        "store_ratio": round(store["s"] / save["s"], 2),
        "store_extra_mib": round(store["extra_mib"]),
        "np_load_s": round(np_load["s"], 3),
        "load_s": round(load["s"], 3),
        "load_ratio": round(load["s"] / np_load["s"], 2),
        "load_unrecorded_s": round(_best(unrecorded)["s"], 3),
        "load_unrecorded_ratio": round(_best(unrecorded)["s"] / np_load["s"], 2),
        "np_load_peak_mib": round(np_load["peak_mib"]),
        "load_peak_mib": round(load["peak_mib"]),
        "array_mib": mib,
        "loaded_type": load["type"],
        "cold_cache": cold,
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--dir", default=None, help="where to write (default: the system temp dir)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(bench_numpy(args.gib, args.dir, args.repeat)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
