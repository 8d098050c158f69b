"""A misen project installed as a package (not editable) and used from elsewhere, as the seed's "Sharing" shows."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("uv") is None, reason="installs the project with uv")

TASKS = '''
from misen import Experiment, Task, meta


@meta(id="SHTRAIN001", cache=True)
def train(lr: float, dim: int) -> dict:
    return {"lr": lr, "dim": dim}


@meta(id="SHEVAL0001", cache=True)
def evaluate(trained_model: dict) -> float:
    return trained_model["lr"] * trained_model["dim"]


@meta(id="SHPLOT0001", cache=True)
def plot_sweep(metrics: dict) -> str:
    return "; ".join(f"{lr},{dim}:{m}" for (lr, dim), m in sorted(metrics.items()))


class TrainingExperiment(Experiment):
    lr: float = 0.001
    dim: int = 256

    def tasks(self) -> dict[str, Task]:
        train_task = Task(train, lr=self.lr, dim=self.dim)
        return {"metrics": Task(evaluate, trained_model=train_task.T)}


if __name__ == "__main__":
    TrainingExperiment.cli()
'''

SWEEP = '''
from misen import Experiment, Task

from my_project.experiments.training import TrainingExperiment, plot_sweep


class TrainingSweep(Experiment):
    lrs: list[float] = [0.001, 0.01]
    dims: list[int] = [256, 512]

    def tasks(self) -> dict[str, Task]:
        metrics = {
            (lr, dim): TrainingExperiment(lr=lr, dim=dim)["metrics"].T
            for lr in self.lrs for dim in self.dims
        }
        return {"plot": Task(plot_sweep, metrics=metrics)}
'''


def test_installed_project_reproduces_from_another_directory(tmp_path: Path) -> None:
    src = tmp_path / "my-project"
    pkg = src / "src" / "my_project" / "experiments"
    pkg.mkdir(parents=True)
    (src / "pyproject.toml").write_text(textwrap.dedent("""
        [project]
        name = "my-project"
        version = "0.1.0"
        dependencies = ["misen"]

        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [tool.hatch.build.targets.wheel]
        packages = ["src/my_project"]
    """))
    (src / "src" / "my_project" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "training.py").write_text(TASKS)
    (pkg / "training_sweep.py").write_text(SWEEP)
    site = tmp_path / "site"
    subprocess.run(
        ["uv", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(src)],
        check=True, capture_output=True, text=True,
    )
    shutil.rmtree(src)  # only the installed copy is left
    elsewhere = tmp_path / "downstream"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("MISEN_CONFIG", None)
    script = textwrap.dedent("""
        from my_project.experiments.training_sweep import TrainingSweep
        plot = TrainingSweep()["plot"].result()
        print(plot)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=elsewhere, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0.001,256:0.256; 0.001,512:0.512; 0.01,256:2.56; 0.01,512:5.12"
    assert (elsewhere / ".misen").is_dir()  # the default disk workspace, where the code runs
    cli = subprocess.run(
        [sys.executable, "-m", "my_project.experiments.training", "--lr", "0.01", "count"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.strip() == "Completed 2 of 2 tasks"  # computed by the sweep above: found in the cache
