"""Benchmark of the heavy serializers: a 1 GiB JAX array and a 1 GiB ``datasets.Dataset`` stored and loaded through
a disk workspace, beside the library's own save and load on the same machine.

Run ``python benchmarks/bench_heavy.py [jax] [dataset] [--gib 1] [--repeat 3] [--dir PATH]``; prints one JSON object
per benchmark. Each measurement runs in its own interpreter (the value is built, and the library warmed up with a
tiny value of the same kind, before the clock starts):

- ``jax``: a float32 ``jax.Array``. Library's own: ``np.save(np.asarray(x))`` + fsync (JAX has no array file format
  of its own; NumPy's is what it documents), and ``jax.device_put(np.load(...))``; misen: ``misen.cache.store`` and
  ``load_hash`` on a disk workspace. Each load ends with a sum on the device, touching every element.
- ``dataset``: a one-column float64 ``datasets.Dataset``. Library's own: ``save_to_disk`` + fsync of its files, and
  ``load_from_disk``; misen: ``misen.cache.store`` and ``load_hash`` on a disk workspace. Each load ends with a sum of the column
  (``pyarrow.compute.sum``), touching every page of the memory-mapped Arrow files.

Page cache is dropped before each load where allowed (root). Budget (issue 18): ≤ 1.3× the library's own save and
load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from _projects import alternating_rounds, best, fresh_python, paired_ratios, ratio

__all__ = ["bench_heavy"]

_STEP = r"""
import json, os, resource, sys, time
what, kind, root, gib = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
n_bytes = int(gib * 2**30)

def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def fsync_tree(path):
    for folder, _, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            os.fsync(fd); os.close(fd)

def workspace():
    from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
    return DiskWorkspace(DiskWorkspaceSettings(directory=os.path.join(root, "ws")))

if kind == "jax":
    import jax, jax.numpy as jnp, numpy as np
    def value():
        return jax.block_until_ready(jnp.full(n_bytes // 4, 1.5, dtype=jnp.float32))
    def total(x):
        return float(jnp.sum(x, dtype=jnp.float64))
else:
    import datasets, numpy as np, pyarrow.compute as pc
    datasets.disable_progress_bars()
    def value():
        return datasets.Dataset.from_dict({"x": np.full(n_bytes // 8, 1.5)})
    def total(ds):
        return float(pc.sum(ds.data.column("x")).as_py())

def warm():
    # what a library does once per process (backend start, lazy imports) is paid before every step's clock starts
    if kind == "jax":
        jax.block_until_ready(jax.device_put(np.zeros(1, dtype=np.float32)))
        return
    path = os.path.join(root, "warm")
    if not os.path.exists(path):
        datasets.Dataset.from_dict({"x": [1.0]}).save_to_disk(path)
    datasets.load_from_disk(path)

out = {}
warm()
if what == "lib_save":
    x = value(); t = time.perf_counter()
    if kind == "jax":
        with open(os.path.join(root, "plain.npy"), "wb") as f:
            np.save(f, np.asarray(x)); f.flush(); os.fsync(f.fileno())
    else:
        x.save_to_disk(os.path.join(root, "plain")); fsync_tree(os.path.join(root, "plain"))
    out = {"s": time.perf_counter() - t}
elif what == "store":
    ws = workspace(); x = value()
    from misen import cache
    if kind == "jax":
        cache.store(ws, jnp.zeros(1))  # plugins found and imported, as in a run
    else:
        cache.store(ws, datasets.Dataset.from_dict({"x": [1.0]}))
    t = time.perf_counter(); h = cache.store(ws, x)
    out = {"s": time.perf_counter() - t, "hash": h}
elif what == "lib_load":
    t = time.perf_counter()
    if kind == "jax":
        x = jax.device_put(np.load(os.path.join(root, "plain.npy")))
    else:
        x = datasets.load_from_disk(os.path.join(root, "plain"))
    s = total(x)
    out = {"s": time.perf_counter() - t, "peak_mib": rss_mib(), "sum": s}
elif what == "load":
    ws = workspace()
    from misen.serializer import serializer_named
    serializer_named("jax.array" if kind == "jax" else "datasets.dataset")
    from misen import cache
    t = time.perf_counter(); x = cache.load_hash(ws, sys.argv[5]); s = total(x)
    out = {"s": time.perf_counter() - t, "peak_mib": rss_mib(), "sum": s, "type": type(x).__name__}
print(json.dumps(out))
"""


_ENV = {"JAX_PLATFORMS": "cpu", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}


def bench_heavy(kind: str, gib: float = 1.0, directory: str | None = None, repeat: int = 3) -> dict[str, Any]:
    """Store and load a ``gib`` GiB value of ``kind`` (``"jax"`` or ``"dataset"``), against the library's own save
    and load (best of ``repeat`` rounds each, alternating, since a shared virtual disk varies from second to second;
    the ratios are the median of the rounds' own ratios, see `_projects.ratio`)."""
    g = str(gib)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MISEN_")}, **_ENV}

    def step(name: str, tmp: str, earlier: dict[str, dict[str, Any]]) -> dict[str, Any]:
        extra = [earlier["store"]["hash"]] if name == "load" else []
        return fresh_python(_STEP, name, kind, tmp, g, *extra, env=env)

    plan = [("lib_save", False), ("store", False), ("lib_load", True), ("load", True)]
    rounds, cold = alternating_rounds(step, plan, repeat=repeat, directory=directory)
    saves, stores, lib_loads, loads = (rounds[name] for name, _ in plan)
    save, store, lib_load, load = best(saves), best(stores), best(lib_loads), best(loads)
    assert load["sum"] == lib_load["sum"], (load["sum"], lib_load["sum"])
    return {
        "bench": kind,
        "gib": gib,
        "repeat": repeat,
        "lib_save_fsync_s": round(save["s"], 3),
        "store_s": round(store["s"], 3),
        "store_ratio": ratio(saves, stores),  # the median of the rounds' own ratios
        "store_ratio_best": round(store["s"] / save["s"], 2),
        "store_ratio_rounds": paired_ratios(saves, stores),
        "lib_load_s": round(lib_load["s"], 3),
        "load_s": round(load["s"], 3),
        "load_ratio": ratio(lib_loads, loads),
        "load_ratio_best": round(load["s"] / lib_load["s"], 2),
        "load_ratio_rounds": paired_ratios(lib_loads, loads),
        "lib_load_peak_mib": round(lib_load["peak_mib"]),
        "load_peak_mib": round(load["peak_mib"]),
        "loaded_type": load["type"],
        "rounds_s": {name: [round(r["s"], 2) for r in found] for name, found in rounds.items()},
        "cold_cache": cold,
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="*", help="jax, dataset (default: both)")
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--dir", default=None, help="where to write (default: the system temp dir)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.kinds) - {"jax", "dataset"})
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: jax, dataset")
    for kind in args.kinds or ["jax", "dataset"]:
        print(json.dumps(bench_heavy(kind, args.gib, args.dir, args.repeat)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
