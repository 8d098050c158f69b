"""Benchmark of the NumPy serializer (design.md §6): a 1 GiB array stored and loaded through a disk workspace.

Run ``python benchmarks/bench_numpy.py [--gib 1] [--dir PATH]``; prints one JSON object. Each measurement runs in
its own interpreter so its peak memory (``ru_maxrss``) is its own:

- ``np.save`` + fsync of the array, against ``misen.cache.store`` on a disk workspace (serialize, checksum, fsync, rename);
- ``np.load`` of that ``.npy`` (then a sum, touching every page), against ``misen.cache.load_hash`` (manifest
  check, memory-mapped load, same sum); ``np.load(mmap_mode="r")`` too, which maps the file as misen does.
  Page cache is dropped before each load where allowed (root).
- the same load once the record of the store's checksum is gone (``load_unrecorded``): the first load after
  the file changed, which checksums every byte before mapping it.

Budget: store ≤ 1.3× ``np.save``+fsync, load ≤ 1.3× ``np.load``, load peak memory ≈ 1× the array.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from _projects import alternating_rounds, best, fresh_python, paired_ratios, ratio

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
    from misen import cache
    from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
    ws = DiskWorkspace(DiskWorkspaceSettings(directory=os.path.join(root, "ws")))
    a = array(); cache.store(ws, np.zeros(1)); base = rss_mib(); t = time.perf_counter()
    h = cache.store(ws, a)
    out = {"s": time.perf_counter() - t, "extra_mib": rss_mib() - base, "hash": h}
elif what in ("np_load", "np_load_mmap"):
    mode = "r" if what == "np_load_mmap" else None
    t = time.perf_counter(); a = np.load(os.path.join(root, "plain.npy"), mmap_mode=mode); s = float(a.sum())
    out = {"s": time.perf_counter() - t, "peak_mib": rss_mib(), "sum": s}
elif what in ("load", "load_unrecorded"):
    from misen import cache
    from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
    ws = DiskWorkspace(DiskWorkspaceSettings(directory=os.path.join(root, "ws")))
    if what == "load_unrecorded":  # no record of an earlier verification: every byte is checksummed first
        from misen.integrity import VERIFIED
        record = ws.open_result(sys.argv[4]) / VERIFIED
        if record.exists():
            record.unlink()
    from misen.serializer import serializer_named; serializer_named("numpy.ndarray")  # plugins found, as in a run
    t = time.perf_counter(); a = cache.load_hash(ws, sys.argv[4]); s = float(a.sum())
    out = {"s": time.perf_counter() - t, "peak_mib": rss_mib(), "sum": s, "type": type(a).__name__}
print(json.dumps(out))
"""


def bench_numpy(
    gib: float = 1.0, directory: str | None = None, repeat: int = 3, settle: float = 5.0
) -> dict[str, Any]:
    """Store and load a ``gib`` GiB float64 array, against ``np.save``+fsync and ``np.load`` (best of
    ``repeat`` rounds each, alternating, since a shared virtual disk varies a lot from one second to the next;
    each step starts ``settle`` seconds after a sync, see `alternating_rounds`)."""
    n = str(int(gib * 2**30) // 8)

    def step(name: str, tmp: str, earlier: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return fresh_python(_STEP, name, tmp, n, *([earlier["store"]["hash"]] if name.startswith("load") else []))

    plan = [
        ("np_save", False),
        ("store", False),
        ("np_load", True),
        ("load", True),
        ("load_unrecorded", True),
        ("np_load_mmap", True),
    ]
    rounds, cold = alternating_rounds(step, plan, repeat=repeat, directory=directory, settle=settle)
    saves, stores, np_loads, loads, unrecorded, np_maps = (rounds[name] for name, _ in plan)
    save, store, np_load, load = best(saves), best(stores), best(np_loads), best(loads)
    return {
        "bench": "numpy.ndarray",
        "gib": gib,
        "repeat": repeat,
        "settle_s": settle,
        # ratios: the median of the rounds' own ratios (see _projects.ratio); the best against the best beside them
        "np_save_fsync_s": round(save["s"], 3),
        "store_s": round(store["s"], 3),
        "store_ratio": ratio(saves, stores),
        "store_ratio_best": round(store["s"] / save["s"], 2),
        "store_extra_mib": round(store["extra_mib"]),
        "np_load_s": round(np_load["s"], 3),
        "load_s": round(load["s"], 3),
        "load_ratio": ratio(np_loads, loads),
        "load_ratio_best": round(load["s"] / np_load["s"], 2),
        # misen's load maps the file; np.load without mmap_mode also reads it into new memory
        "np_load_mmap_s": round(best(np_maps)["s"], 3),
        "load_mmap_ratio": ratio(np_maps, loads),
        "load_unrecorded_s": round(best(unrecorded)["s"], 3),
        "load_unrecorded_ratio": ratio(np_loads, unrecorded),
        "store_ratio_rounds": paired_ratios(saves, stores),
        "np_save_fsync_s_rounds": [round(a["s"], 2) for a in saves],
        "store_s_rounds": [round(b["s"], 2) for b in stores],
        "load_ratio_rounds": paired_ratios(np_loads, loads),
        "load_mmap_ratio_rounds": paired_ratios(np_maps, loads),
        "np_load_peak_mib": round(np_load["peak_mib"]),
        "load_peak_mib": round(load["peak_mib"]),
        "array_mib": int(gib * 1024),
        "loaded_type": load["type"],
        "cold_cache": cold,
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--dir", default=None, help="where to write (default: the system temp dir)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between a sync and each step")
    args = parser.parse_args(argv)
    print(json.dumps(bench_numpy(args.gib, args.dir, args.repeat, args.settle)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
