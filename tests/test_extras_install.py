"""The published shape: wheels built from the monorepo install as `misen[slurm,torch]` into a fresh venv and run a task."""

from __future__ import annotations

import glob
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH_WHEELS = sorted(glob.glob("/opt/wheels/torch-*+cpu-cp311-*.whl"))
NEEDED = [
    "misen",
    "misen-core",
    "misen-executor-local",
    "misen-workspace-disk",
    "misen-executor-slurm",
    "misen-serializers-torch",
]

pytestmark = [
    pytest.mark.skipif(shutil.which("uv") is None, reason="builds wheels with uv"),
    pytest.mark.skipif(
        not TORCH_WHEELS or sys.version_info[:2] != (3, 11),
        reason="needs the local PyTorch CPU wheel (/opt/wheels) for Python 3.11; PyPI's is a multi-GB CUDA build",
    ),
]


def test_install_slurm_and_torch_extras_from_wheels(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    for name in NEEDED:
        subprocess.run(
            ["uv", "build", "--quiet", "--wheel", "--out-dir", str(dist), str(ROOT / "packages" / name)],
            check=True,
            capture_output=True,
            text=True,
        )
    wheels = {p.name.split("-")[0].replace("_", "-"): p for p in dist.glob("*.whl")}
    assert set(wheels) == set(NEEDED), wheels
    venv = tmp_path / "venv"
    subprocess.run(["uv", "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    requirements = [f"misen[slurm,torch] @ {wheels['misen'].as_uri()}"]
    requirements += [f"{name} @ {path.as_uri()}" for name, path in wheels.items() if name != "misen"]
    requirements.append(f"torch @ {Path(TORCH_WHEELS[0]).as_uri()}")
    proc = subprocess.run(
        ["uv", "pip", "install", "--quiet", "--python", str(python), *requirements],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "tensordemo"\nversion = "0"\n')
    (project / "flow.py").write_text(textwrap.dedent("""
        import torch
        from misen import Task, meta, run
        from misen.session import registry

        @meta(id="TENSOR0001", cache=True)
        def make(n: int) -> torch.Tensor:
            return torch.arange(n, dtype=torch.float32) * 2

        if __name__ == "__main__":
            names = {i.name for i in registry().infos()}
            print("slurm" in names, "local" in names, "disk" in names)
            t = Task(make, n=5)
            report = run(t)
            value = t.result()
            print(report.ok, type(value).__name__, value.tolist())
            import json
            ws = __import__("misen.runner", fromlist=["x"]).resolve_workspace()
            from misen import cache
            print(json.loads((ws.open_result(cache.result_hash(ws, t)) / "manifest.json").read_text())["serializer"])
    """))
    out = subprocess.run(
        [str(python), "flow.py"], cwd=project, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "True True True"
    assert lines[1] == "True Tensor [0.0, 2.0, 4.0, 6.0, 8.0]"
    assert lines[2] != "pickle"  # stored by the torch serializer, not pickled
