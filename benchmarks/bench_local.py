"""Benchmark of the local executor (design.md §6): ``n`` cheap cacheable tasks, cold, on the disk workspace.

Run ``python benchmarks/bench_local.py [--n 1000]``; prints one JSON object. `bench_local` is what
``benchmarks/run.py`` calls. Each figure is the ``run()`` call (or its equivalent) in a fresh interpreter, in a
fresh project with an empty ``.misen/`` workspace:

- ``run_s``: the local executor (worker processes, snapshot, binding, unit logs): what the 5 s budget is about.
- ``in_process_s``: the in-process executor on the same tasks: the same per-task work in one process.
- ``pool_s``: the floor: a bare ``multiprocessing.Pool`` (one process per CPU) running the same work units with
  `misen.worker.execute_payload`, without the executor's scheduling, snapshot, binding or logs.
- ``cached_s``: the local executor again on the now-cached tasks (planning only; no worker starts).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _projects import make_project

__all__ = ["bench_local"]

_RUN = """
import json, sys, time
from benchpkg.exp import Cells
from misen.reporting import PlainReporter
from misen.runner import run
tasks = list(Cells(n=int(sys.argv[1])).tasks().values())
t0 = time.perf_counter()
report = run(tasks, executor=sys.argv[2], reporter=PlainReporter(verbose=False))
t1 = time.perf_counter()
assert report.ok, report.failed
print(json.dumps({"s": t1 - t0, "units": len(report.outcomes)}))
"""

_POOL = """
import json, multiprocessing, os, sys, time
from benchpkg.exp import Cells
from misen.runner import build_plan, resolve_workspace
from misen.worker import execute_payload

def work(payload):
    return execute_payload(payload, capture="fd").status

if __name__ == "__main__":
    tasks = list(Cells(n=int(sys.argv[1])).tasks().values())
    t0 = time.perf_counter()
    ws = resolve_workspace(None)
    plan, _, _ = build_plan(tasks, ws, run_id="bench-pool", executor="pool")
    payloads = [plan.payload(uid) for uid in plan.units]
    with multiprocessing.get_context("forkserver").Pool(int(sys.argv[2])) as pool:
        statuses = pool.map(work, payloads, chunksize=1)
    t1 = time.perf_counter()
    assert set(statuses) == {"done"}, set(statuses)
    print(json.dumps({"s": t1 - t0, "units": len(statuses)}))
"""


def _python(code: str, *args: str, cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark step failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _once(n: int, cpus: int, tmp: Path) -> dict[str, float]:
    def fresh(name: str, executor: str) -> tuple[Path, dict[str, str]]:
        root = make_project(tmp / name, executor=executor)
        if executor == "local":
            text = (root / ".misen.toml").read_text()
            (root / ".misen.toml").write_text(
                text.replace('type = "local"', f'type = "local"\nnum_cpus = {cpus}')
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith("MISEN_")}
        env["PYTHONPATH"] = str(root / "src")
        return root, env

    out: dict[str, float] = {}
    root, env = fresh("local", "local")
    out["run_s"] = _python(_RUN, str(n), "local", cwd=root, env=env)["s"]
    out["cached_s"] = _python(_RUN, str(n), "local", cwd=root, env=env)["s"]
    root, env = fresh("in-process", "in-process")
    out["in_process_s"] = _python(_RUN, str(n), "in-process", cwd=root, env=env)["s"]
    root, env = fresh("pool", "in-process")
    script = root / "pool_floor.py"
    script.write_text(textwrap.dedent(_POOL))
    done = subprocess.run(
        [sys.executable, str(script), str(n), str(cpus)], cwd=root, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"pool floor failed:\n{done.stderr[-2000:]}")
    out["pool_s"] = json.loads(done.stdout.strip().splitlines()[-1])["s"]
    return out


def bench_local(n: int = 1000, cpus: int | None = None, repeat: int = 1) -> dict[str, Any]:
    """Measure ``n`` cheap cacheable tasks, cold, with the local executor and its two references (seconds).

    With ``repeat`` > 1 the three are measured in turn that many times and each figure is the best, which
    filters out other work on a shared machine.
    """
    cpus = cpus or len(os.sched_getaffinity(0))
    rounds = []
    for i in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            rounds.append(_once(n, cpus, Path(tmp) / str(i)))
    out: dict[str, Any] = {"n": n, "cpus": cpus, "repeat": repeat}
    for key in rounds[0]:
        out[key] = min(r[key] for r in rounds)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="how many tasks (default 1000)")
    parser.add_argument(
        "--cpus", type=int, default=None, help="CPUs for the executor and the pool (default: all)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each figure is the best (default 3)")
    args = parser.parse_args(argv)
    result = bench_local(args.n, args.cpus, args.repeat)
    print(json.dumps(result))
    print(
        f"local executor: {result['run_s']:.2f}s for {args.n} cold tasks on {result['cpus']} CPU(s) (budget 5 s); "
        f"in-process {result['in_process_s']:.2f}s; bare Pool floor {result['pool_s']:.2f}s; "
        f"all cached {result['cached_s']:.2f}s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
