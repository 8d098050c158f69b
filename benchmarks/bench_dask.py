"""Benchmark of the dask executor: ``n`` cheap cacheable tasks, cold, on a local Dask cluster of 2 workers.

Run ``python benchmarks/bench_dask.py [--n 1000]``; prints one JSON object. `bench_dask` is what
``benchmarks/run.py`` calls. In a fresh interpreter and a fresh project (empty ``.misen/`` disk workspace):

- ``cluster_s``: starting the 2-worker cluster misen starts (scheduler on 127.0.0.1, two worker processes).
- ``dask_alone_s``: the floor: ``client.map`` of the same task bodies on that cluster and ``gather`` of the
  results, no caching, no workspace.
- ``misen_dask_s``: the ``run()`` call with ``DaskExecutor(address=...)`` on the same, already started cluster:
  planning, the snapshot, probes of the task function, then the units in parcels (a few Dask tasks, each running
  many units one after the other in a bound unit process through misen's worker path), results and provenance
  written to the workspace. The budget: within 2× Dask alone.
- ``dask_alone_cpu_s``, ``misen_dask_cpu_s``: CPU seconds used meanwhile by this process (client and scheduler),
  the workers and the unit processes: what the two cost, read apart from other work on a shared machine.
- ``local_s``: the local executor on the same tasks with 2 CPUs, in another fresh project (for comparison).
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

__all__ = ["bench_dask"]

_DASK = """
import json, sys, time
import psutil
from distributed import Client
from benchpkg.exp import Cells, leaf
from misen.reporting import PlainReporter
from misen.runner import run
from misen_executor_dask import DaskExecutor
from misen_executor_dask._cluster import _start_local
from misen_executor_dask.executor import DaskExecutorSettings

def body(i):
    return leaf(i)  # the task function, called directly: the same body misen runs

def cpu():
    # CPU seconds of this process and of every process under it: the cluster's, the units'.
    total = 0.0
    for p in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total

if __name__ == "__main__":
    n = int(sys.argv[1])
    t0 = time.perf_counter()
    cluster = _start_local(DaskExecutorSettings(workers=2))
    client = Client(cluster)
    client.wait_for_workers(2)
    c1, t1 = cpu(), time.perf_counter()
    futures = client.map(body, range(n), pure=False)
    values = client.gather(futures)
    t2, c2 = time.perf_counter(), cpu()
    assert values == list(range(n))
    del futures
    tasks = list(Cells(n=n).tasks().values())
    c3, t3 = cpu(), time.perf_counter()
    report = run(tasks, executor=DaskExecutor(address=cluster.scheduler_address), reporter=PlainReporter(verbose=False))
    t4, c4 = time.perf_counter(), cpu()
    assert report.ok and len(report.outcomes) == n, report.failed
    client.close()
    cluster.close()
    print(json.dumps({
        "cluster_s": t1 - t0, "dask_alone_s": t2 - t1, "misen_dask_s": t4 - t3,
        "dask_alone_cpu_s": c2 - c1, "misen_dask_cpu_s": c4 - c3,
    }))
"""

_LOCAL = """
import json, sys, time
from benchpkg.exp import Cells
from misen.reporting import PlainReporter
from misen.runner import run
tasks = list(Cells(n=int(sys.argv[1])).tasks().values())
t0 = time.perf_counter()
report = run(tasks, executor="local", reporter=PlainReporter(verbose=False))
t1 = time.perf_counter()
assert report.ok, report.failed
print(json.dumps({"local_s": t1 - t0}))
"""


def _script(code: str, n: int, root: Path, env: dict[str, str]) -> dict[str, Any]:
    script = root / "bench_step.py"
    script.write_text(textwrap.dedent(code))
    done = subprocess.run([sys.executable, str(script), str(n)], cwd=root, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark step failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _once(n: int, tmp: Path) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISEN_")}
    root = make_project(tmp / "dask", executor="dask")
    out = _script(_DASK, n, root, {**env, "PYTHONPATH": str(root / "src")})
    root = make_project(tmp / "local", executor="local")
    text = (root / ".misen.toml").read_text()
    (root / ".misen.toml").write_text(text.replace('type = "local"', 'type = "local"\nnum_cpus = 2'))
    out.update(_script(_LOCAL, n, root, {**env, "PYTHONPATH": str(root / "src")}))
    return out


def bench_dask(n: int = 1000, repeat: int = 1) -> dict[str, Any]:
    """Measure ``n`` cheap cacheable tasks, cold, with misen on Dask, Dask alone and the local executor.

    With ``repeat`` > 1 each figure is the best of that many rounds, which filters out other work on a shared
    machine.
    """
    rounds = []
    for i in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            rounds.append(_once(n, Path(tmp) / str(i)))
    out: dict[str, Any] = {"n": n, "workers": 2, "repeat": repeat}
    for key in rounds[0]:
        out[key] = min(r[key] for r in rounds)
    out["ratio"] = round(out["misen_dask_s"] / out["dask_alone_s"], 1)
    out["cpu_ratio"] = round(out["misen_dask_cpu_s"] / out["dask_alone_cpu_s"], 1)
    out["rounds"] = rounds
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="how many tasks (default 1000)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; each figure is the best (default 1)")
    args = parser.parse_args(argv)
    r = bench_dask(args.n, args.repeat)
    print(json.dumps(r))
    print(
        f"misen on Dask: {r['misen_dask_s']:.2f}s for {args.n} cold tasks on 2 workers ({r['ratio']}× Dask alone, "
        f"budget 2×); Dask alone {r['dask_alone_s']:.2f}s; local executor {r['local_s']:.2f}s; "
        f"starting the cluster {r['cluster_s']:.2f}s; CPU {r['misen_dask_cpu_s']:.2f}s against "
        f"{r['dask_alone_cpu_s']:.2f}s ({r['cpu_ratio']}×)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
