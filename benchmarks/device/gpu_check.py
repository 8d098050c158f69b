"""GPU binding and CUDA results, checked on a machine with one NVIDIA GPU (run by hand; see docs/performance.md).

Under the local executor with ``num_cuda_gpus = 1``: a ``gpus=1`` task sees exactly one CUDA device, a ``gpus=0``
task sees none, two ``gpus=1`` tasks never overlap in time, and a CUDA tensor result comes back on the GPU with
the same values. Prints one JSON line with what it saw, and exits non-zero if a check fails.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import textwrap
from pathlib import Path

PROJECT = {
    "pyproject.toml": '[project]\nname = "gpucheck"\nversion = "0"\n',
    ".misen.toml": '[executor]\ntype = "local"\nnum_cuda_gpus = 1\nmax_workers = 3\n[workspace]\ntype = "disk"\n',
    "src/gpucheck/__init__.py": "",
    "src/gpucheck/tasks.py": textwrap.dedent('''
        import os
        import time

        from misen import ASSIGNED_RESOURCES, meta


        @meta(id="GPUCHECK01", cache=True, resources={"gpus": 1})
        def on_gpu(i: int, assigned=ASSIGNED_RESOURCES) -> dict:
            import torch

            start = time.time()
            x = torch.ones(4096, 4096, device="cuda")
            for _ in range(20):
                x = (x @ x) / 4096.0
            torch.cuda.synchronize()
            time.sleep(1.0)
            return {"visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "count": torch.cuda.device_count(),
                    "assigned": list(assigned.gpus), "start": start, "end": time.time()}


        @meta(id="GPUCHECK02", cache=True, resources={"gpus": 0})
        def on_cpu(i: int) -> dict:
            import torch

            return {"visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "count": torch.cuda.device_count()}


        @meta(id="GPUCHECK03", cache=True, resources={"gpus": 1})
        def cuda_tensor(n: int):
            import torch

            return torch.arange(n, dtype=torch.float32, device="cuda") * 3
    '''),
}


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="misen-gpu-"))
    for name, text in PROJECT.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    os.chdir(root)
    sys.path.insert(0, str(root / "src"))
    import torch
    from gpucheck.tasks import cuda_tensor, on_cpu, on_gpu
    from misen import Task, run
    from misen.reporting import PlainReporter

    gpu = [Task(on_gpu, i=i) for i in range(2)]
    cpu = [Task(on_cpu, i=i) for i in range(2)]
    tensor = Task(cuda_tensor, n=1000)
    report = run([*gpu, *cpu, tensor], reporter=PlainReporter())
    seen = {
        "report_ok": report.ok,
        "gpu": [t.result() for t in gpu],
        "cpu": [t.result() for t in cpu],
    }
    value = tensor.result()
    expected = torch.arange(1000, dtype=torch.float32) * 3
    seen["tensor"] = {"device": str(value.device), "equal": bool(torch.equal(value.cpu(), expected))}
    a, b = sorted(seen["gpu"], key=lambda r: r["start"])
    checks = {
        "run ok": report.ok,
        "gpus=1 sees one device": all(r["count"] == 1 for r in seen["gpu"]),
        "gpus=1 is told its index": all(r["assigned"] == [0] for r in seen["gpu"]),
        "gpus=0 sees none": all(r["count"] == 0 for r in seen["cpu"]),
        "two gpus=1 tasks do not overlap": a["end"] <= b["start"],
        "cuda tensor round-trips on the gpu": seen["tensor"]["device"].startswith("cuda") and seen["tensor"]["equal"],
    }
    seen["checks"] = checks
    print(json.dumps(seen, default=str))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
