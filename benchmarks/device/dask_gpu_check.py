"""GPU binding under the dask executor, checked on a machine with one NVIDIA GPU (run by hand; see
docs/performance.md).

A local Dask cluster of 2 workers with ``num_cuda_gpus = 1``: the worker owning the GPU declares ``GPU=1``; a
``gpus=1`` task runs there and sees exactly one CUDA device (and computes on it), a ``gpus=0`` task sees none,
and two ``gpus=1`` tasks never hold the device at the same time. Prints one JSON line with what it saw, and exits
non-zero if a check fails.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import textwrap
from pathlib import Path

PROJECT = {
    "pyproject.toml": '[project]\nname = "daskgpucheck"\nversion = "0"\n',
    "src/daskgpucheck/__init__.py": "",
    "src/daskgpucheck/tasks.py": textwrap.dedent('''
        import os
        import time

        from misen import ASSIGNED_RESOURCES, meta


        @meta(id="DASKGPU01", cache=True, resources={"gpus": 1})
        def on_gpu(i: int, assigned=ASSIGNED_RESOURCES) -> dict:
            import torch

            start = time.time()
            x = torch.ones(2048, 2048, device="cuda")
            for _ in range(10):
                x = (x @ x) / 2048.0
            torch.cuda.synchronize()
            time.sleep(0.5)
            return {"visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "count": torch.cuda.device_count(),
                    "value": float(x[0, 0]), "assigned": list(assigned.gpus), "start": start, "end": time.time()}


        @meta(id="DASKGPU02", cache=True)
        def on_cpu(i: int, assigned=ASSIGNED_RESOURCES) -> dict:
            import torch

            return {"visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "count": torch.cuda.device_count(),
                    "assigned": list(assigned.gpus), "affinity": sorted(os.sched_getaffinity(0)),
                    "omp": os.environ.get("OMP_NUM_THREADS")}
    '''),
}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, text in PROJECT.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        os.chdir(root)
        sys.path.insert(0, str(root / "src"))
        from daskgpucheck import tasks
        from misen import Task, cache
        from misen.reporting import PlainReporter
        from misen.runner import run
        from misen_executor_dask import DaskExecutor
        from misen_workspace_disk.workspace import DiskWorkspace

        ws = DiskWorkspace(directory=str(root / ".misen"))
        gpu = [Task(tasks.on_gpu, i=i) for i in range(2)]
        cpu = [Task(tasks.on_cpu, i=i) for i in range(2)]
        report = run(gpu + cpu, executor=DaskExecutor(workers=2, num_cuda_gpus=1, grace_period=2),
                     workspace=ws, reporter=PlainReporter(sys.stderr))
        seen = {"ok": report.ok, "gpu": [cache.load(ws, t) for t in gpu] if report.ok else [],
                "cpu": [cache.load(ws, t) for t in cpu] if report.ok else []}
        checks = {
            "run ok": report.ok,
            "gpus=1 sees one device": all(g["count"] == 1 and g["visible"] == "0" and g["assigned"] == [0]
                                          for g in seen["gpu"]),
            "gpus=1 computed on it": all(g["value"] == 1.0 for g in seen["gpu"]),
            "gpus=0 sees none": all(c["count"] == 0 and c["visible"] == "" and c["assigned"] == [] for c in seen["cpu"]),
            "gpu units do not overlap": len(seen["gpu"]) == 2 and (
                seen["gpu"][0]["end"] <= seen["gpu"][1]["start"] or seen["gpu"][1]["end"] <= seen["gpu"][0]["start"]),
        }
        print(json.dumps({"checks": checks, "seen": seen}))
        return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
