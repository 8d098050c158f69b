"""One runner for every performance budget of design.md §6; each result becomes a row of docs/performance.md.

    uv run python benchmarks/run.py            # every benchmark (a few minutes; needs ~3 GiB of free disk)
    uv run python benchmarks/run.py graph      # one of them (names: see --list)
    uv run python benchmarks/run.py --no-write # print only; leave docs/performance.md alone

Each benchmark prints its figure beside its floor: bare Python doing the same work (starting an interpreter,
hashing the same number of tuples, writing and fsyncing the same files), so a figure can be read against what
the machine allows. Bytecode is compiled first (``compileall`` on the environment and the packages' sources),
since users' installs have it and these machines may not (``PYTHONDONTWRITEBYTECODE=1``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import attrs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PAGE = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- benchmarks:begin -->", "<!-- benchmarks:end -->"
sys.path.insert(0, str(HERE))

from _projects import make_project  # noqa: E402


@attrs.frozen
class Row:
    """One line of the table: what was measured, the figure, its floor, the budget and the verdict."""

    name: str
    what: str
    figure: str
    floor: str
    budget: str
    ok: bool | None


# --- helpers -----------------------------------------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISEN_")}
    env.update(extra)
    return env


def _python(code: str, *args: str, cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark step failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _wall(cmd: list[str], *, cwd: Path, env: dict[str, str], repeat: int) -> float:
    """Median wall time of ``cmd`` over ``repeat`` runs (each checked)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr[-2000:]}")
    return statistics.median(times)


def compile_bytecode() -> None:
    """Compile the environment and the packages' sources, as a user's install would have them."""
    targets = [sys.prefix, *(str(p) for p in sorted(ROOT.glob("packages/*/src"))), str(ROOT / "examples")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", *targets], capture_output=True)


def _ms(s: float) -> str:
    return f"{s * 1000:.0f} ms"


def _s(s: float) -> str:
    return f"{s:.2f} s"


# --- benchmarks --------------------------------------------------------------------------------------------


def bench_import() -> list[Row]:
    """``import misen`` in a fresh interpreter (budget 0.15 s), against the interpreter alone."""
    compile_bytecode()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        env = _env()
        bare = _wall([sys.executable, "-c", "pass"], cwd=cwd, env=env, repeat=15)
        full = _wall([sys.executable, "-c", "import misen"], cwd=cwd, env=env, repeat=15)
    cost = full - bare
    return [Row("import", "`import misen` (process wall minus bare interpreter)", _ms(cost), f"{_ms(bare)} interpreter", "≤ 150 ms", cost <= 0.15)]


def bench_help() -> list[Row]:
    """``misen --help`` and an experiment's ``--help`` (budget 0.25 s each), from benchmarks/bench_startup.py."""
    compile_bytecode()
    from bench_startup import measure_startup

    found = measure_startup(repeat=10)
    bare = found["python"]["median"]
    rows = []
    for case in ("misen --help", "python -m pkg.exp --help"):
        t = found[case]["median"]
        rows.append(Row(f"help:{case.split()[0] if case.startswith('misen') else 'experiment'}",
                        f"`{case}` (process wall)", _ms(t), f"{_ms(bare)} `python -c pass`", "≤ 250 ms", t <= 0.25))
    return rows


_GRAPH = """
import hashlib, json, sys, time
t0 = time.perf_counter()
from misen import Task
from benchpkg.exp import leaf, step
t1 = time.perf_counter()
n = int(sys.argv[1]) // 2
tops = [Task(step, x=Task(leaf, i=i).T, k=i % 7) for i in range(n)]
hashes = [t.hash for t in tops]
t2 = time.perf_counter()
# floor: the same shape in bare Python, each node a blake2b digest of its canonical arguments
floor_start = time.perf_counter()
out = []
for i in range(n):
    a = hashlib.blake2b(json.dumps(["BENCHLEAF1", {"i": i}]).encode(), digest_size=16).hexdigest()
    out.append(hashlib.blake2b(json.dumps(["BENCHSTEP1", {"x": a, "k": i % 7}]).encode(), digest_size=16).hexdigest())
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "build_hash_s": t2 - t1, "floor_s": t3 - floor_start}))
"""


def _graph(code_changes: str, n: int = 100_000) -> Row:
    with tempfile.TemporaryDirectory() as tmp:
        root = make_project(Path(tmp), code_changes=code_changes)
        env = _env(PYTHONPATH=str(root / "src"))
        runs = [_python(_GRAPH, str(n), cwd=root, env=env) for _ in range(3)]
    best = min(runs, key=lambda r: r["build_hash_s"])
    t = best["build_hash_s"]
    label = "code tracked" if code_changes == "track" else "code not tracked"
    return Row(f"graph:{code_changes}", f"build + hash a {n:,}-task graph ({label})",
               f"{_s(t)} ({t / n * 1e6:.1f} µs/task)", f"{_s(best['floor_s'])} blake2b of each node",
               "≤ 1.5 s", t <= 1.5)


def bench_graph() -> list[Row]:
    """Build and hash 100,000 tasks (budget 1.5 s), with and without code fingerprints in the identity."""
    return [_graph("track"), _graph("ignore")]


def bench_status() -> list[Row]:
    """Status of 100,000 cached tasks in a cold process (budget 3 s), from benchmarks/bench_disk.py."""
    from bench_disk import bench_status as measure

    found = measure(100_000)
    floor = _stat_floor(100_000)
    t = found["process_wall_s"]
    return [Row("status", "status of 100,000 cached tasks, cold process, disk workspace (process wall)", _s(t),
                f"{_s(floor)} interpreter + 100,000 `os.stat`", "≤ 3 s", t <= 3.0)]


_STAT = """
import json, os, sys, time
root = sys.argv[1]
t0 = time.perf_counter()
names = sorted(os.listdir(root))
found = sum(1 for name in names if os.path.exists(os.path.join(root, name, "manifest.json")))
print(json.dumps({"found": found, "s": time.perf_counter() - t0}))
"""


def _stat_floor(n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(n):
            d = root / f"{i:032x}"
            d.mkdir()
            (d / "manifest.json").write_bytes(b"{}")
        return _wall([sys.executable, "-c", textwrap.dedent(_STAT), str(root)], cwd=root, env=_env(), repeat=3)


_RUN = """
import json, sys, time
t0 = time.perf_counter()
from benchpkg.exp import Cells
t1 = time.perf_counter()
report = Cells(n=int(sys.argv[1])).run(executor=sys.argv[2])
t2 = time.perf_counter()
assert report.ok, report.failed
print(json.dumps({"import_s": t1 - t0, "run_s": t2 - t1, "ran": len(report.outcomes)}))
"""

_WRITE_FLOOR = """
import json, os, pickle, sys, time
root, n = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
for i in range(n):
    tmp = os.path.join(root, f"{i}.tmp")
    with open(tmp, "wb") as f:
        pickle.dump(i, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(root, f"{i}.pkl"))
print(json.dumps({"s": time.perf_counter() - t0}))
"""

_READ_FLOOR = """
import os, pickle, sys
root, n = sys.argv[1], int(sys.argv[2])
total = 0
for i in range(n):
    with open(os.path.join(root, f"{i}.pkl"), "rb") as f:
        total += pickle.load(f)
"""


def bench_in_process() -> list[Row]:
    """1,000 cheap cached tasks in process: cold run (budget 1 s), fully cached re-run with start-up (0.4 s)."""
    compile_bytecode()
    n = 1000
    with tempfile.TemporaryDirectory() as tmp:
        root = make_project(Path(tmp) / "p")
        env = _env(PYTHONPATH=str(root / "src"))
        cold = _python(_RUN, str(n), "in-process", cwd=root, env=env)
        again = _wall([sys.executable, "-m", "benchpkg.exp", "run"], cwd=root, env=env, repeat=5)
        floor_dir = Path(tmp) / "floor"
        floor_dir.mkdir()
        write_floor = _python(_WRITE_FLOOR, str(floor_dir), str(n), cwd=root, env=env)["s"]
        read_floor = _wall([sys.executable, "-c", _READ_FLOOR, str(floor_dir), str(n)], cwd=root, env=env, repeat=5)
    return [
        Row("in-process:cold", f"in-process run of {n:,} cheap cached tasks, cold (the `run()` call)",
            _s(cold["run_s"]), f"{_s(write_floor)} pickle + fsync + rename of {n:,} files", "≤ 1 s", cold["run_s"] <= 1.0),
        Row("in-process:cached", f"re-run of those {n:,} tasks, all cached (`python -m pkg.exp`, process wall)",
            _s(again), f"{_s(read_floor)} interpreter + read {n:,} pickles", "≤ 0.4 s", again <= 0.4),
    ]


_POOL_FLOOR = """
import json, os, pickle, sys, time
from concurrent.futures import ProcessPoolExecutor
root, n = sys.argv[1], int(sys.argv[2])

def work(i):
    tmp = os.path.join(root, f"{i}.tmp")
    with open(tmp, "wb") as f:
        pickle.dump(i, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(root, f"{i}.pkl"))
    return i

if __name__ == "__main__":
    t0 = time.perf_counter()
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        sum(pool.map(work, range(n), chunksize=1))
    print(json.dumps({"s": time.perf_counter() - t0}))
"""


def bench_local() -> list[Row]:
    """1,000 cheap cached tasks on the local executor, cold (budget 5 s)."""
    compile_bytecode()
    n = 1000
    try:
        import bench_local as theirs  # written with the local executor; preferred when present
    except ImportError:
        theirs = None
    if theirs is not None and hasattr(theirs, "bench_local"):
        found = theirs.bench_local(n)
        t = float(found["run_s"])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            root = make_project(Path(tmp) / "p", executor="local")
            env = _env(PYTHONPATH=str(root / "src"))
            t = _python(_RUN, str(n), "local", cwd=root, env=env)["run_s"]
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "floor.py"
        script.write_text(textwrap.dedent(_POOL_FLOOR))
        done = subprocess.run([sys.executable, str(script), tmp, str(n)], capture_output=True, text=True, check=True)
        floor = json.loads(done.stdout)["s"]
    return [Row("local", f"local executor, {n:,} cheap cached tasks, cold (the `run()` call)", _s(t),
                f"{_s(floor)} process pool writing + fsyncing {n:,} files", "≤ 5 s", t <= 5.0)]


def bench_numpy() -> list[Row]:
    """A 1 GiB NumPy result: store ≤ 1.3× np.save+fsync, load ≤ 1.3× np.load, peak memory ≈ 1× (bench_numpy.py)."""
    from bench_numpy import bench_numpy as measure

    f = measure(1.0, repeat=5)  # best of five, alternating, each step after a sync and a pause (see _projects)
    peak_ok = f["load_peak_mib"] <= 1.1 * f["array_mib"]
    return [
        Row("numpy:store", "store a 1 GiB float64 array (disk workspace; best round, and the median of the rounds' "
            "ratios)", f"{_s(f['store_s'])} ({f['store_ratio']}×)",
            f"{_s(f['np_save_fsync_s'])} `np.save` + fsync", "≤ 1.3×", f["store_ratio"] <= 1.3),
        Row("numpy:load", "load a stored 1 GiB float64 array and sum it (page cache dropped: "
            f"{'yes' if f['cold_cache'] else 'no'})", f"{_s(f['load_s'])} ({f['load_ratio']}×), peak {f['load_peak_mib']} MiB",
            f"{_s(f['np_load_s'])} `np.load`, peak {f['np_load_peak_mib']} MiB ({_s(f['np_load_mmap_s'])} with "
            "`mmap_mode='r'`)", "≤ 1.3×, peak ≈ 1 GiB",
            f["load_ratio"] <= 1.3 and peak_ok),
        Row("numpy:load-changed", "the same load with no record of an earlier verification (first load after the "
            "file changed: every byte checksummed first)", f"{_s(f['load_unrecorded_s'])} ({f['load_unrecorded_ratio']}×)",
            f"{_s(f['np_load_s'])} `np.load`", "≤ 1.3×", f["load_unrecorded_ratio"] <= 1.3),
    ]


def _store_load_rows(prefix: str, what: str, f: dict[str, Any], save: str, load: str, *, lib: str = "lib") -> list[Row]:
    """The two rows of a 1 GiB store/load benchmark: misen beside the library's own save and load (≤ 1.3×)."""
    cold = "yes" if f["cold_cache"] else "no"
    return [
        Row(f"{prefix}:store", f"store {what} (disk workspace, every byte checksummed; best round, and the median "
            "of the rounds' ratios)",
            f"{_s(f['store_s'])} ({f['store_ratio']}×)", f"{_s(f[f'{lib}_save_fsync_s'])} {save}", "≤ 1.3×",
            f["store_ratio"] <= 1.3),
        Row(f"{prefix}:load", f"load it and touch every value (page cache dropped: {cold})",
            f"{_s(f['load_s'])} ({f['load_ratio']}×), peak {f['load_peak_mib']} MiB",
            f"{_s(f[f'{lib}_load_s'])} {load}, peak {f[f'{lib}_load_peak_mib']} MiB", "≤ 1.3×", f["load_ratio"] <= 1.3),
    ]


def bench_xarray() -> list[Row]:
    """A 1 GiB xarray Dataset (NetCDF-4): store ≤ 1.3× `to_netcdf`+fsync, load ≤ 1.3× `load_dataset` (bench_xarray.py)."""
    from bench_xarray import bench_xarray as measure

    f = measure(1.0, repeat=5)  # five alternating rounds: this disk varies several-fold from run to run
    return _store_load_rows("xarray", f"a 1 GiB `xarray.Dataset` (two float64 variables, a {f['file_mib']:,} MiB "
                            "NetCDF-4 file)", f, "`to_netcdf` + fsync", "`xarray.load_dataset`", lib="xr")


def bench_jax() -> list[Row]:
    """A 1 GiB float32 JAX array: store ≤ 1.3× `np.save`+fsync, load ≤ 1.3× `device_put(np.load)` (bench_heavy.py)."""
    from bench_heavy import bench_heavy as measure

    f = measure("jax", 1.0, repeat=5)  # an odd count for the median of the rounds' ratios
    return _store_load_rows("jax", "a 1 GiB float32 `jax.Array` (CPU)", f, "`np.save(np.asarray(x))` + fsync",
                            "`jax.device_put(np.load(...))`")


def bench_dataset() -> list[Row]:
    """A 1 GiB Hugging Face Dataset: store ≤ 1.3× `save_to_disk`+fsync, load ≤ 1.3× `load_from_disk` (bench_heavy.py)."""
    from bench_heavy import bench_heavy as measure

    f = measure("dataset", 1.0, repeat=4)
    return _store_load_rows("dataset", "a 1 GiB `datasets.Dataset` (one float64 column, Arrow files)", f,
                            "`save_to_disk` + fsync", "`datasets.load_from_disk`")


def bench_dask() -> list[Row]:
    """1,000 cheap cached tasks on a 2-worker local Dask cluster, cold, beside Dask alone (budget 2×) (bench_dask.py)."""
    compile_bytecode()
    from bench_dask import bench_dask as measure

    f = measure(1000, repeat=3)  # best of three rounds: this shared machine varies several-fold
    what = (
        "dask executor on a started 2-worker local cluster, 1,000 cheap cached tasks, cold (the `run()` call; "
        f"local executor on 2 CPUs: {_s(f['local_s'])}; starting the cluster: {_s(f['cluster_s'])})"
    )
    return [Row("dask", what, f"{_s(f['misen_dask_s'])} ({f['ratio']}×)",
                f"{_s(f['dask_alone_s'])} Dask alone (`client.map` + `gather` of the same bodies)",
                "≤ 2× Dask alone", f["ratio"] <= 2.0)]


def bench_report() -> list[Row]:
    """`misen report` of a 10,000-task sweep: write ≤ 2 s, Chromium renders it in a few seconds (bench_report.py)."""
    from bench_report import bench_report as measure

    f = measure(10_000)
    rows = [Row("report:write", f"write the report of a {f['tasks']:,}-task sweep (`write_report`, best of 3; first "
                f"{_s(f['first_write_s'])})", f"{_s(f['write_s'])} ({_s(f['write_cpu_s'])} CPU)",
                f"{_s(f['graph_s'])} building the graph", "≤ 2 s", f["write_s"] <= 2)]
    if f.get("render_s") is not None:
        rows.append(Row("report:render", f"headless Chromium opens that {f['bytes'] / 2**20:.1f} MiB file (to the "
                        "script's ready mark; then task table, 10,001-bar timeline)",
                        f"{_s(f['render_s'])}; {_s(f['table_s'])}; {_s(f['timeline_s'])}", "n/a", "a few seconds",
                        f["render_s"] <= 3))
    return rows


def bench_peers() -> list[Row]:
    """misen beside joblib.Memory and the floors (1,000 tasks), and 10,000 tasks against 1,000 (bench_peers.py)."""
    compile_bytecode()
    from bench_peers import bench_peers as measure
    from bench_peers import peer_rows

    rows = [Row(*row) for row in peer_rows(measure(1000, repeat=3))]
    if os.access("/dev/shm", os.W_OK):  # the same on a RAM disk: CPU and start-up, without this disk's moods
        rows += [Row(*row) for row in peer_rows(measure(1000, repeat=3, directory="/dev/shm"), ram=True)]
    from bench_peers import bench_scale, scale_rows

    return rows + [Row(*row) for row in scale_rows(bench_scale((1000, 10000)))]


BENCHMARKS: dict[str, Callable[[], list[Row]]] = {
    "import": bench_import,
    "help": bench_help,
    "graph": bench_graph,
    "status": bench_status,
    "in-process": bench_in_process,
    "local": bench_local,
    "numpy": bench_numpy,
    "dask": bench_dask,
    "report": bench_report,
    "peers": bench_peers,
    "xarray": bench_xarray,
    "jax": bench_jax,
    "dataset": bench_dataset,
}


# --- the page ----------------------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def write_rows(rows: list[Row], when: str, where: str) -> None:
    """Replace (or add) each row, by name, in the table between the markers of docs/performance.md."""
    text = PAGE.read_text()
    head, rest = text.split(BEGIN, 1)
    table, tail = rest.split(END, 1)
    lines = [ln for ln in table.strip().splitlines() if ln.startswith("|")]
    header, body = lines[:2], lines[2:]
    by_name = {ln.split("|")[1].strip().strip("`"): ln for ln in body}
    for r in rows:
        verdict = "n/a" if r.ok is None else ("yes" if r.ok else "**no**")
        by_name[r.name] = f"| `{r.name}` | {r.what} | {r.figure} | {r.floor} | {r.budget} | {verdict} | {when} | {where} |"
    prefixes = list(BENCHMARKS)

    def position(name: str) -> tuple[int, str]:
        prefix = name.split(":", 1)[0]
        return (prefixes.index(prefix) if prefix in prefixes else len(prefixes), name)

    new_table = "\n".join([*header, *(by_name[k] for k in sorted(by_name, key=position))])
    PAGE.write_text(f"{head}{BEGIN}\n{new_table}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/performance.md")
    args = parser.parse_args(argv)
    if args.list:
        for name, fn in BENCHMARKS.items():
            print(f"{name:12s} {(fn.__doc__ or '').splitlines()[0]}")
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    when, where = date.today().isoformat(), machine()
    failed = False
    for name in args.names or list(BENCHMARKS):
        print(f"== {name}: {(BENCHMARKS[name].__doc__ or '').splitlines()[0]}", flush=True)
        try:
            rows = BENCHMARKS[name]()
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            print(f"   FAILED: {type(exc).__name__}: {exc}", flush=True)
            failed = True
            continue
        for r in rows:
            verdict = "" if r.ok is None else ("within budget" if r.ok else "OVER BUDGET")
            print(f"   {r.name:20s} {r.figure:32s} floor {r.floor:45s} budget {r.budget:22s} {verdict}", flush=True)
        if not args.no_write:
            write_rows(rows, when, where)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
