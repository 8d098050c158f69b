"""A throwaway research project for the command-line tests, and helpers to run its command lines.

The project follows the seed: ``src/my_project`` with ``experiments/training.py`` (TrainingExperiment),
``experiments/training_sweep.py`` (TrainingSweep) and ``configs/training.py`` (a named config), whose task
functions append a line to ``$MARK_FILE`` each time they execute, so tests count executions by side effect.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

__all__ = ["Project", "make_project", "needs_disk_workspace", "one_error_line", "pycache_dir"]

STEPS = """
import os

from misen import meta


def _mark(what: str) -> None:
    path = os.environ.get("MARK_FILE")
    if path:
        with open(path, "a") as f:
            f.write(what + "\\n")


@meta(id="TRAIN4CL1X", cache=True)
def train(lr: float, dim: int) -> dict:
    _mark(f"train {lr} {dim}")
    print(f"training with lr={lr} dim={dim}")
    if os.environ.get("FAIL_TRAIN") == str(lr):
        raise RuntimeError(f"training diverged at lr={lr}")
    return {"lr": lr, "dim": dim}


@meta(id="EVAL4CL1XX", cache=True)
def evaluate(trained_model: dict) -> dict:
    _mark(f"evaluate {trained_model['lr']} {trained_model['dim']}")
    return {"accuracy": round(trained_model["lr"] * 10, 6), "dim": trained_model["dim"]}


@meta(id="PLOT4CL1XX", cache=True)
def plot(metrics: dict) -> str:
    _mark("plot")
    return f"plot of accuracy {metrics['accuracy']}"
"""

# The seed's "Experiments" example, as written (train/evaluate/plot come from steps.py).
TRAINING = """
from misen import Experiment, Task

from my_project.steps import evaluate, plot, train


class TrainingExperiment(Experiment):
    lr: float = 0.001
    dim: int = 256

    def tasks(self) -> dict[str, Task]:
        train_task = Task(train, lr=self.lr, dim=self.dim)
        eval_task  = Task(evaluate, trained_model=train_task.T)
        plot_task  = Task(plot, metrics=eval_task.T)
        return {"metrics": eval_task, "plot": plot_task}

if __name__ == "__main__":
    TrainingExperiment.cli()
"""

# The seed's "Named configs" example, as written.
CONFIG = """
from my_project.experiments.training import TrainingExperiment

__config__ = TrainingExperiment(lr=0.1, dim=512)

if __name__ == "__main__":
    __config__.cli()
"""

# The seed's "Sweeps" example, as written (plot_sweep gets an id and a body).
SWEEP = """
from misen import Experiment, Task, meta

from my_project.experiments.training import TrainingExperiment

Metrics = dict
Plot = str


@meta(id="SWEEP4CL1X", cache=True)
def plot_sweep(metrics: dict[tuple[float, int], Metrics]) -> Plot:
    return "; ".join(f"{lr},{dim}:{m['accuracy']}" for (lr, dim), m in sorted(metrics.items()))

class TrainingSweep(Experiment):
    lrs:  list[float] = [0.001, 0.01]
    dims: list[int]   = [256, 512]

    def tasks(self) -> dict[str, Task]:
        metrics = {
            (lr, dim): TrainingExperiment(lr=lr, dim=dim)["metrics"].T
            for lr in self.lrs for dim in self.dims
        }
        return {"plot": Task(plot_sweep, metrics=metrics)}

if __name__ == "__main__":
    TrainingSweep.cli()
"""

MISEN_TOML = """
[executor]
type = "in-process"

[workspace]
type = "disk"
directory = ".misen"
"""


class Project:
    """A project directory and the environment its command lines run in."""

    def __init__(self, root: Path, pycache: Path) -> None:
        self.root = root
        self.marks = root / "marks.txt"
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("MISEN_", "PYTHONDONTWRITEBYTECODE"))
        }
        self.env.update(
            {
                "PYTHONPATH": str(root / "src"),
                "MARK_FILE": str(self.marks),
                "XDG_CONFIG_HOME": str(root / ".xdg"),
                # Bytecode in a private folder: the processes start faster and the environment is not written.
                "PYTHONPYCACHEPREFIX": str(pycache),
                "NO_COLOR": "1",
                "COLUMNS": "200",
            }
        )

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python ARGS...`` in the project; returns the completed process (text output)."""
        return subprocess.run(
            [sys.executable, *args],
            cwd=self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def exp(self, module: str, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        """``python -m my_project.<module> ARGS...``."""
        return self.run("-m", f"my_project.{module}", *args, **kw)  # type: ignore[arg-type]

    def misen(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        """The ``misen`` command (``python -m misen.cli``, the same ``main`` as the console script)."""
        return self.run("-m", "misen.cli", *args, **kw)  # type: ignore[arg-type]

    def executed(self) -> list[str]:
        """The task executions recorded so far (and forget them)."""
        if not self.marks.exists():
            return []
        lines = self.marks.read_text().splitlines()
        self.marks.unlink()
        return lines


def make_project(root: Path, pycache: Path) -> Project:
    needs_disk_workspace()
    project = Project(root, pycache)
    project.write("pyproject.toml", '[project]\nname = "my-project"\nversion = "0.1.0"\n')
    project.write(".misen.toml", MISEN_TOML)
    for pkg in ("", "experiments/", "configs/"):
        project.write(f"src/my_project/{pkg}__init__.py", "")
    project.write("src/my_project/steps.py", STEPS)
    project.write("src/my_project/experiments/training.py", TRAINING)
    project.write("src/my_project/experiments/training_sweep.py", SWEEP)
    project.write("src/my_project/configs/training.py", CONFIG)
    return project


_PYCACHE: list[Path] = []


def pycache_dir() -> Path:
    """One bytecode folder for every subprocess of this test session (removed at exit)."""
    if not _PYCACHE:
        import atexit
        import shutil
        import tempfile

        path = Path(tempfile.mkdtemp(prefix="misen-cli-tests-pycache-"))
        atexit.register(shutil.rmtree, path, True)
        _PYCACHE.append(path)
    return _PYCACHE[0]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "proj", pycache_dir())


def needs_disk_workspace() -> None:
    """Results must outlive each command's process: these tests need the disk workspace plugin."""
    pytest.importorskip("misen_workspace_disk", reason="the command-line tests need misen-workspace-disk")


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The single ``Error: ...`` line a failed command printed (asserting there is exactly one, and no traceback)."""
    assert proc.returncode != 0, proc
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error: ")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def test_project_fixture_imports(project: Project) -> None:
    proc = project.run("-c", "from my_project.configs.training import __config__; print(__config__)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "TrainingExperiment(lr=0.1, dim=512)"
