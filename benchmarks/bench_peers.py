"""misen beside its peers (issue 17): ``joblib.Memory`` and bare-Python floors, measured in the same run.

Run ``python benchmarks/bench_peers.py [--n 1000] [--repeat 3]``; prints one JSON object. `bench_peers` is what
``benchmarks/run.py peers`` calls. Every figure is the wall time of a whole process (interpreter start included),
the median of ``repeat`` rounds; in each round every contender runs once, one after the other, so load on a
shared machine falls on all of them alike. Every other round runs the peers first, and the disk is synced
(untimed) before each step: on a virtual disk a process that follows another's thousands of small writes pays
for their write-back, which a fixed order would charge to whoever always runs second. Every round's files stay
until the last round is done: the disk works on thousands of deletions long after they return. One warm-up
round runs before the counted ones and is only reported (``"warmup"``; ``--no-warmup`` leaves it out): on these
machines every step of the first round ran slower, the bare-Python floor too, up to twice as slow.

``--dir /dev/shm`` runs everything on a RAM disk, where making a file costs next to nothing: what remains is each
contender's CPU per task and its start-up, the comparison a fast local SSD comes close to. On a slow or busy disk
the number of files each contender makes per task weighs more (misen makes one, joblib two and two folders).

The workload is ``n`` cheap cacheable tasks (``leaf(i) -> i``):

- ``misen_cold_s`` / ``misen_cached_s``: ``python -m benchpkg.exp run``, in-process executor, disk workspace,
  empty then full.
- ``misen_local_s``: the same with the local executor and 2 workers, cold.
- ``joblib_cold_s`` / ``joblib_cached_s``: ``joblib.Memory.cache`` over the same function, serial.
- ``joblib_parallel_s``: ``joblib.Parallel(n_jobs=2)`` over ``Memory.cache``, cold.
- ``floor_s``: one process pickling, writing, fsyncing and renaming ``n`` files.
- ``pool_floor_s``: the same work spread over a 2-process ``concurrent.futures`` pool.

``--baseline DIR`` (a checkout or ``git archive`` of another commit) also runs misen's three contenders on that
tree's sources in every round (``base_cold_s``, ``base_cached_s``, ``base_local_s``), before this tree's: a
before/after comparison taken in the same minutes as the peers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _projects import make_project

__all__ = ["bench_peers", "bench_scale", "peer_rows", "scale_rows"]

_JOBLIB = """
import sys
from joblib import Memory, Parallel, delayed

def leaf(i):
    return i

if __name__ == "__main__":
    location, n, jobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    cached = Memory(location, verbose=0).cache(leaf)
    if jobs == 1:
        total = sum(cached(i) for i in range(n))
    else:
        total = sum(Parallel(n_jobs=jobs)(delayed(cached)(i) for i in range(n)))
    assert total == n * (n - 1) // 2
"""

_FLOOR = """
import os, pickle, sys
from concurrent.futures import ProcessPoolExecutor

def work(args):
    root, i = args
    tmp = os.path.join(root, f"{i}.tmp")
    with open(tmp, "wb") as f:
        pickle.dump(i, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(root, f"{i}.pkl"))
    return i

if __name__ == "__main__":
    root, n, jobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if jobs == 1:
        for i in range(n):
            work((root, i))
    else:
        with ProcessPoolExecutor(jobs) as pool:
            sum(pool.map(work, [(root, i) for i in range(n)], chunksize=1))
"""


def _wall(cmd: list[str], *, cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed


#: The packages whose sources a baseline tree supplies.
_BASELINE_PACKAGES = ("misen-core", "misen-executor-local", "misen-workspace-disk")


def _baseline_path(tree: Path) -> str:
    """Every package's sources of the baseline tree (not only those the benchmark runs: the installed plugins are
    imported at every start, and this tree's may need a newer core than the baseline's)."""
    for name in _BASELINE_PACKAGES:
        if not (tree / "packages" / name / "src").is_dir():
            raise SystemExit(f"--baseline {tree}: packages/{name}/src is not there (give the root of a misen checkout)")
    return os.pathsep.join(str(p) for p in sorted((tree / "packages").glob("*/src")) if p.is_dir())


def _project(
    tmp: Path, name: str, executor: str, jobs: int, baseline: str = ""
) -> tuple[Path, dict[str, str]]:
    root = make_project(tmp / name, executor=executor)
    if executor == "local":
        text = (root / ".misen.toml").read_text()
        (root / ".misen.toml").write_text(text.replace('type = "local"', f'type = "local"\nnum_cpus = {jobs}'))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISEN_")}
    # An outer PYTHONPATH stays behind the project's (to measure another checkout's sources, say).
    outer = (baseline, os.environ.get("PYTHONPATH", ""))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root / "src"), *outer) if p)
    return root, env


def _round(n: int, jobs: int, tmp: Path, local: bool, baseline: str = "", flip: bool = False) -> dict[str, float]:
    """One round: every contender once. misen's steps come first, the peers' after (``flip``: the other way
    round), and the disk is synced before each step (untimed), so no contender pays for another's write-back."""
    tmp.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    run = [py, "-m", "benchpkg.exp", "run", "--n", str(n)]
    ours: list[list[tuple[str, list[str], Path, dict[str, str]]]] = []
    if baseline:
        root, env = _project(tmp, "base-inproc", "in-process", jobs, baseline)
        ours.append([("base_cold_s", run, root, env), ("base_cached_s", run, root, env)])
        if local:
            root, env = _project(tmp, "base-local", "local", jobs, baseline)
            ours.append([("base_local_s", run, root, env)])
    root, env = _project(tmp, "inproc", "in-process", jobs)
    ours.append([("misen_cold_s", run, root, env), ("misen_cached_s", run, root, env)])
    if local:
        lroot, lenv = _project(tmp, "local", "local", jobs)
        ours.append([("misen_local_s", run, lroot, lenv)])
    script = tmp / "peer_joblib.py"
    script.write_text(textwrap.dedent(_JOBLIB))
    floor = tmp / "peer_floor.py"
    floor.write_text(textwrap.dedent(_FLOOR))
    joblib = [py, str(script)]
    theirs = [
        [
            ("joblib_cold_s", [*joblib, str(tmp / "jl1"), str(n), "1"], tmp, env),
            ("joblib_cached_s", [*joblib, str(tmp / "jl1"), str(n), "1"], tmp, env),
        ],
        [("joblib_parallel_s", [*joblib, str(tmp / "jl2"), str(n), str(jobs)], tmp, env)],
    ]
    for key, k in (("floor_s", 1), ("pool_floor_s", jobs)):
        target = tmp / f"floor{k}"
        target.mkdir()
        theirs.append([(key, [py, str(floor), str(target), str(n), str(k)], tmp, env)])
    out: dict[str, float] = {}
    for group in (theirs + ours) if flip else (ours + theirs):
        for key, cmd, cwd, step_env in group:
            os.sync()
            out[key] = _wall(cmd, cwd=cwd, env=step_env)
    return out


def bench_peers(
    n: int = 1000,
    repeat: int = 3,
    jobs: int = 2,
    local: bool = True,
    baseline: Path | None = None,
    directory: str | None = None,
    warmup_round: bool = True,
) -> dict[str, Any]:
    """Medians over ``repeat`` rounds of every figure (seconds), the per-round figures, and the ratios; every
    contender's files go under ``directory`` (default: the system's temporary folder). ``warmup_round``: run one
    round before them and only report it (``"warmup"``)."""
    rounds = []
    base = _baseline_path(baseline) if baseline is not None else ""
    # Every round's files stay until the last round is done: deleting thousands of files is slow work for the
    # disk that goes on after the deletion returns (and after a sync), and it would land on the next round's
    # first step.
    tmp = Path(tempfile.mkdtemp(prefix="misen-peers-", dir=directory))
    try:
        # A warm-up round first, not counted: on these machines every step of the first round ran slower, the
        # bare-Python floor included (up to 2×), and whichever contender went first paid the most.
        warmup = _round(n, jobs, tmp / "warmup", local, base) if warmup_round else {}
        for i in range(repeat):
            figures = _round(n, jobs, tmp / str(i), local, base, flip=i % 2 == 1)
            rounds.append({"load": os.getloadavg()[0], "peers_first": i % 2 == 1, **figures})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out: dict[str, Any] = {"n": n, "repeat": repeat, "jobs": jobs, "rounds": rounds, "warmup": warmup}
    for key in rounds[0]:
        if not isinstance(rounds[0][key], bool):
            out[key] = statistics.median(r[key] for r in rounds)
    # Speed relative to the peer: > 1 means misen is faster. Per round too, to show the noise.
    pairs = [("cold", "joblib_cold_s", "misen_cold_s"), ("cached", "joblib_cached_s", "misen_cached_s")]
    if local:
        pairs.append(("local", "joblib_parallel_s", "misen_local_s"))
    if base:
        pairs += [(f"base_{name}", theirs, "base_" + ours[len("misen_") :]) for name, theirs, ours in pairs]
    for name, theirs, ours in pairs:
        per_round = [r[theirs] / r[ours] for r in rounds]
        out[f"speed_vs_joblib_{name}"] = round(statistics.median(per_round), 2)
        out[f"speed_vs_joblib_{name}_rounds"] = [round(x, 2) for x in per_round]
    out["cold_over_floor"] = round(out["misen_cold_s"] / out["floor_s"], 2)
    if local:
        out["local_over_pool_floor"] = round(out["misen_local_s"] / out["pool_floor_s"], 2)
    return out


def peer_rows(f: dict[str, Any], ram: bool = False) -> list[tuple[str, str, str, str, str, bool]]:
    """The rows of docs/performance.md for ``f`` (from `bench_peers`): name, what, figure, floor, budget, ok.
    ``ram``: ``f`` was measured on a RAM disk (rows ``peers-ram:…``)."""
    rows = _peer_rows(f)
    if not ram:
        return rows
    where = "; every file on a RAM disk (`--dir /dev/shm`): CPU and start-up only"
    speeds = {"peers:cold": "cold", "peers:cached": "cached", "peers:local": "local"}
    # There the floor is little more than pickling in a loop: only the peer is a goal.
    return [
        (
            name.replace("peers:", "peers-ram:"),
            what + where,
            figure,
            floor,
            "≥ 1.0× joblib",
            f[f"speed_vs_joblib_{speeds[name]}"] >= 1.0,
        )
        for name, what, figure, floor, _budget, _ok in rows
    ]


def _peer_rows(f: dict[str, Any]) -> list[tuple[str, str, str, str, str, bool]]:
    n, jobs = f["n"], f["jobs"]

    def speed(name: str) -> str:
        seen = ", ".join(f"{x}" for x in f[f"speed_vs_joblib_{name}_rounds"])
        return f"{f[f'speed_vs_joblib_{name}']}× joblib's speed (rounds: {seen})"

    rows = [
        (
            "peers:cold",
            f"{n:,} cheap cacheable tasks, in-process, cold (`python -m pkg.exp run`, process wall, median of "
            f"{f['repeat']})",
            f"{f['misen_cold_s']:.2f} s; {speed('cold')}; {f['cold_over_floor']}× the floor",
            f"{f['floor_s']:.2f} s one process writing + fsyncing {n:,} pickles; `joblib.Memory` "
            f"{f['joblib_cold_s']:.2f} s",
            "≥ 1.0× joblib, ≤ 2× floor",
            f["speed_vs_joblib_cold"] >= 1.0 and f["cold_over_floor"] <= 2.0,
        ),
        (
            "peers:cached",
            f"the same {n:,} tasks, all cached (process wall)",
            f"{f['misen_cached_s']:.2f} s; {speed('cached')}",
            f"`joblib.Memory` {f['joblib_cached_s']:.2f} s",
            "≥ 1.0× joblib",
            f["speed_vs_joblib_cached"] >= 1.0,
        ),
    ]
    if "misen_local_s" in f:
        rows.append(
            (
                "peers:local",
                f"{n:,} cheap cacheable tasks, local executor with {jobs} workers, cold (process wall)",
                f"{f['misen_local_s']:.2f} s; {speed('local')}; {f['local_over_pool_floor']}× the floor",
                f"{f['pool_floor_s']:.2f} s {jobs}-process pool writing + fsyncing {n:,} pickles; "
                f"`joblib.Parallel(n_jobs={jobs})` {f['joblib_parallel_s']:.2f} s",
                "≥ 1.0× joblib, ≤ 3× floor",
                f["speed_vs_joblib_local"] >= 1.0 and f["local_over_pool_floor"] <= 3.0,
            )
        )
    return rows


def bench_scale(sizes: tuple[int, ...] = (1000, 10000), repeat: int = 1) -> dict[str, Any]:
    """Cold in-process runs of each size (whole process, best of ``repeat``): seconds and µs per task."""
    out: dict[str, Any] = {"sizes": list(sizes), "repeat": repeat}
    for n in sizes:
        times = []
        for i in range(repeat):
            tmp = Path(tempfile.mkdtemp(prefix="misen-scale-"))
            try:
                root, env = _project(tmp, str(i), "in-process", 1)
                times.append(_wall([sys.executable, "-m", "benchpkg.exp", "run", "--n", str(n)], cwd=root, env=env))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        out[f"cold_{n}_s"] = min(times)
        out[f"per_task_{n}_us"] = round(min(times) / n * 1e6)
    return out


def scale_rows(f: dict[str, Any]) -> list[tuple[str, str, str, str, str, bool]]:
    """The row of docs/performance.md for ``f`` (from `bench_scale`)."""
    small, large = f["sizes"][0], f["sizes"][-1]
    a, b = f[f"per_task_{small}_us"], f[f"per_task_{large}_us"]
    return [
        (
            "peers:scale",
            f"per-task cost of a cold in-process run of {large:,} cheap tasks against {small:,} (process wall)",
            f"{b} µs/task ({f[f'cold_{large}_s']:.1f} s)",
            f"{a} µs/task at {small:,} ({f[f'cold_{small}_s']:.1f} s)",
            f"≤ the {small:,}-task figure",
            b <= a,
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="how many tasks (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each figure is the median (default 3)")
    parser.add_argument("--jobs", type=int, default=2, help="workers of the parallel contenders (default 2)")
    parser.add_argument("--no-local", action="store_true", help="leave out the local executor")
    parser.add_argument("--baseline", type=Path, help="also run misen from this checkout's sources, each round")
    parser.add_argument("--dir", help="where the contenders' files go (e.g. /dev/shm: CPU and start-up only)")
    parser.add_argument("--no-warmup", action="store_true", help="count the first round too (no warm-up round)")
    args = parser.parse_args(argv)
    figures = bench_peers(
        args.n,
        args.repeat,
        args.jobs,
        local=not args.no_local,
        baseline=args.baseline,
        directory=args.dir,
        warmup_round=not args.no_warmup,
    )
    print(json.dumps({"directory": args.dir, **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
