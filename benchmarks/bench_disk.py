"""Benchmarks of the disk workspace (design.md §6): status of 100,000 tasks, and a 1 GiB result.

Run ``python benchmarks/bench_disk.py [status|bytes|all] [--n 100000] [--gib 1] [--dir PATH]``; prints one JSON
object per measurement. `bench_status` and `bench_bytes` are what ``benchmarks/run.py`` calls.

- status: a workspace with ``n`` cached tasks (one record and one result directory each, made directly so setup
  takes seconds) is queried in a fresh interpreter: import, graph build, then ``is_cached`` for every task.
- bytes: a ``bytes`` value of ``gib`` GiB is stored (serialize, checksum, fsync, rename) and loaded (checked and
  read), against plain ``write``+``fsync`` and ``read`` of the same bytes in the same directory. The page cache
  is dropped before each read where that is allowed (root), so both reads come from the disk alike.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

__all__ = ["bench_bytes", "bench_status"]

_TASKS = """
from misen import Task, meta

@meta(id="BENCHDISK1", cache=True)
def cell(i: int) -> int:
    return i

def tasks(n):
    return [Task(cell, i=i) for i in range(n)]
"""

_QUERY = """
import json, sys, time
t0 = time.perf_counter()
from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
import bench_disk_tasks
t1 = time.perf_counter()
tasks = bench_disk_tasks.tasks(int(sys.argv[2]))
t2 = time.perf_counter()
ws = DiskWorkspace(DiskWorkspaceSettings(directory=sys.argv[1]))
cached = sum(ws.is_cached(t) for t in tasks)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "build_s": t2 - t1, "is_cached_s": t3 - t2, "cached": cached}))
"""


def _populate(root: Path, n: int, project: Path) -> None:
    sys.path.insert(0, str(project))
    import bench_disk_tasks  # type: ignore[import-not-found]
    from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
    from misen_workspace_disk._fs import dump_json

    ws = DiskWorkspace(DiskWorkspaceSettings(directory=str(root), fsync=False))
    for i, task in enumerate(bench_disk_tasks.tasks(n)):
        result = f"{i:032x}"
        rdir = root / "results" / result[:2] / result
        rdir.mkdir(parents=True, exist_ok=True)
        (rdir / "manifest.json").write_bytes(
            dump_json({"result_hash": result, "files": {}, "serializer": "pickle"})
        )
        ws.put_record(
            "task", task.hash, {"result": result, "name": "cell", "resolved": "", "key": task.key_hash}
        )


def bench_status(n: int = 100_000, directory: str | None = None) -> dict[str, Any]:
    """``is_cached`` of ``n`` cached tasks in a fresh interpreter (budget: 3 s for 100,000 including the build)."""
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        project = Path(tmp)
        (project / "bench_disk_tasks.py").write_text(_TASKS)
        root = project / "ws"
        t0 = time.perf_counter()
        _populate(root, n, project)
        setup = time.perf_counter() - t0
        env = {**os.environ, "PYTHONPATH": str(project)}
        cmd = [sys.executable, "-c", textwrap.dedent(_QUERY), str(root), str(n)]
        subprocess.run(cmd, env=env, cwd=project, check=True, capture_output=True)  # warm the page cache once
        # the best of two: other jobs on a shared machine (and their page-cache drops) only ever add time
        best: tuple[float, dict[str, Any]] | None = None
        for _ in range(2):
            t0 = time.perf_counter()
            out = subprocess.run(cmd, env=env, cwd=project, check=True, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if best is None or wall < best[0]:
                best = (wall, json.loads(out.stdout))
        assert best is not None
        wall, figures = best
        assert figures["cached"] == n, figures
        return {
            "bench": "disk.status",
            "tasks": n,
            "setup_s": round(setup, 2),
            "process_wall_s": round(wall, 3),
            **{k: round(v, 3) for k, v in figures.items() if k.endswith("_s")},
            "per_task_us": round(figures["is_cached_s"] / n * 1e6, 2),
        }


def _drop_caches() -> bool:
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1\n")
        return True
    except OSError:
        return False


def bench_bytes(gib: float = 1.0, directory: str | None = None, repeat: int = 3) -> dict[str, Any]:
    """Store and load a ``gib`` GiB ``bytes`` result, against plain write+fsync and read (budget: 1.3x each)."""
    from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings

    size = int(gib * 1024**3)
    value = os.urandom(1024 * 1024) * (size // (1024 * 1024))
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        plain = Path(tmp) / "plain.bin"
        ws = DiskWorkspace(DiskWorkspaceSettings(directory=str(Path(tmp) / "ws")))
        writes: list[float] = []
        stores: list[float] = []
        h = ""
        for i in range(repeat):
            for what in ("write", "store") if i % 2 == 0 else ("store", "write"):
                t0 = time.perf_counter()
                if what == "write":
                    with open(plain, "wb", buffering=0) as f:
                        view, done = memoryview(value), 0
                        while done < len(view):
                            done += f.write(view[done:])
                        os.fsync(f.fileno())
                    writes.append(time.perf_counter() - t0)
                else:
                    if h:
                        ws.delete_result(h)
                        t0 = time.perf_counter()
                    h = ws.store(value)
                    stores.append(time.perf_counter() - t0)
        write_s, store_s = statistics.median(writes), statistics.median(stores)
        del value
        dropped = False
        reads: list[float] = []
        loads: list[float] = []
        for i in range(repeat):
            # alternate the order: whichever read comes second may find the disk busier
            for what in ("read", "load") if i % 2 == 0 else ("load", "read"):
                dropped = _drop_caches()
                t0 = time.perf_counter()
                if what == "read":
                    with open(plain, "rb", buffering=0) as f:
                        data = f.read()
                else:
                    data = ws.load_hash(h)
                (reads if what == "read" else loads).append(time.perf_counter() - t0)
                assert len(data) == size
                del data
        read_s, load_s = statistics.median(reads), statistics.median(loads)
    return {
        "bench": "disk.bytes",
        "gib": gib,
        "write_fsync_s": round(write_s, 3),
        "store_s": round(store_s, 3),
        "store_ratio": round(store_s / write_s, 2),
        "read_s": round(read_s, 3),
        "load_s": round(load_s, 3),
        "load_ratio": round(load_s / read_s, 2),
        "cold_cache": dropped,
        "repeats": repeat,
    }


def main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", default="all", choices=["status", "bytes", "all"])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--dir", default=None, help="where to create the temporary workspaces")
    args = parser.parse_args(argv)
    if args.what in ("status", "all"):
        print(json.dumps(bench_status(args.n, args.dir)), flush=True)
    if args.what in ("bytes", "all"):
        print(json.dumps(bench_bytes(args.gib, args.dir)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
