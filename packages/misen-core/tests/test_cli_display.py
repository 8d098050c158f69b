"""Output on a terminal (a real pseudo-terminal): the live display of ``run`` ends with the run; typed parameters
become options of the right kinds; ``--help`` stays free of rich and heavy libraries."""

from __future__ import annotations

import os
import pty
import select
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import pytest
from test_cli_project import Project, make_project, one_error_line, pycache_dir


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "proj", pycache_dir())


def run_in_terminal(
    project: Project, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> tuple[str, int]:
    """Run ``python ARGS`` with its output on a pseudo-terminal; return what it wrote and its exit status."""
    environ = {**project.env, **(env or {})}
    environ.pop("NO_COLOR", None)
    environ["TERM"] = "xterm-256color"
    pid, fd = pty.fork()
    if pid == 0:  # the child
        os.chdir(project.root)
        os.execve(sys.executable, [sys.executable, *args], environ)
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            os.kill(pid, 9)
            break
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace"), os.waitstatus_to_exitcode(status)


def test_live_display_on_a_terminal(project: Project) -> None:
    out, code = run_in_terminal(project, "-m", "my_project.experiments.training_sweep", "--lrs", "0.2")
    assert code == 0, out
    assert "\x1b[" in out  # styled
    assert "units" in out and "running" in out  # the live display was drawn
    # The display ends with the run's summary (the short named results follow it, on standard output).
    assert "run finished" in out.split("\x1b[?25h")[-1]
    assert "\x1b[?25h" in out  # ... and ended itself (the cursor is shown again)
    assert len([ln for ln in project.executed() if ln.startswith("train")]) == 2


def test_live_display_reports_failures(project: Project) -> None:
    out, code = run_in_terminal(
        project, "-m", "my_project.experiments.training", "--lr", "0.7", env={"FAIL_TRAIN": "0.7"}
    )
    assert code == 1
    assert "training diverged at lr=0.7" in out
    assert "finished with failures" in out


def test_list_on_a_terminal_is_coloured_but_the_same_text(project: Project) -> None:
    out, code = run_in_terminal(project, "-m", "my_project.experiments.training", "list")
    assert code == 0
    assert "\x1b[" in out
    plain = project.exp("experiments.training", "list")
    assert "\x1b[" not in plain.stdout
    assert plain.stdout.splitlines()[0].startswith("○ metrics")


TYPED = '''
from __future__ import annotations

import enum
from pathlib import Path
from typing import Literal, Optional

from misen import Experiment, Task, meta


class Optimizer(enum.Enum):
    SGD = "sgd"
    ADAM = "adam"


@meta(id="ECHO4CLI01", cache=True)
def echo(values: dict) -> dict:
    return values


class Typed(Experiment):
    """An experiment with every kind of parameter."""

    n: int = 3
    lr: float = 0.5
    name: str = "x"
    use_gpu: bool = False
    optimizer: Optimizer = Optimizer.SGD
    mode: Literal["fast", "slow"] = "fast"
    seed: Optional[int] = None
    tags: list[str] = ["a"]
    optimizers: list[Optimizer] = [Optimizer.SGD]
    out: Path = Path("out")

    def tasks(self) -> dict[str, Task]:
        values = {
            "n": self.n, "lr": self.lr, "name": self.name, "use_gpu": self.use_gpu,
            "optimizer": self.optimizer.value, "mode": self.mode, "seed": self.seed, "tags": self.tags,
            "optimizers": [o.value for o in self.optimizers], "out": str(self.out),
        }
        return {"echo": Task(echo, values=values)}

if __name__ == "__main__":
    Typed.cli()
'''


def test_typed_parameters_become_options(project: Project) -> None:
    project.write("src/my_project/experiments/typed.py", TYPED)
    args = [
        "--n", "4", "--lr", "1", "--name", "y", "--use-gpu", "--optimizer", "adam", "--mode", "slow",
        "--seed", "7", "--tags", "b,c", "--tags", "d", "--optimizers", "adam,SGD", "--out", "elsewhere",
    ]  # fmt: skip
    proc = project.exp("experiments.typed", "run", *args)
    assert proc.returncode == 0, proc.stderr
    # `name` does not collide with result's NAME argument; parameters come after the subcommand too.
    res = project.exp("experiments.typed", "result", "echo", *args)
    assert res.returncode == 0, res.stderr
    assert eval(res.stdout) == {  # our own pretty-printed dict
        "n": 4, "lr": 1.0, "name": "y", "use_gpu": True, "optimizer": "adam", "mode": "slow", "seed": 7,
        "tags": ["b", "c", "d"], "optimizers": ["adam", "sgd"], "out": "elsewhere",
    }  # fmt: skip
    defaults = project.exp("experiments.typed", "run", "--no-use-gpu", "--seed", "none")
    assert defaults.returncode == 0, defaults.stderr
    res = project.exp("experiments.typed", "result", "echo")
    assert "'seed': None" in res.stdout and "'use_gpu': False" in res.stdout
    helped = project.exp("experiments.typed", "--help").stdout
    for text in ("--use-gpu / --no-use-gpu", "--optimizer [sgd|adam]", "--mode [fast|slow]", "--seed INTEGER|none",
                 "--tags TEXT,...", "An experiment with every kind of parameter."):  # fmt: skip
        assert text in helped, text
    bad = {
        ("--mode", "medium"): "'medium' is not one of 'fast', 'slow'",
        ("--optimizer", "rmsprop"): "Invalid value for '--optimizer'",
        ("--n", "2.5"): "'2.5' is not a valid integer",
        ("--optimizers", "sgd,nope"): "Invalid value for '--optimizers'",
    }
    for argv, expected in bad.items():
        assert expected in one_error_line(project.exp("experiments.typed", *argv)), argv


def test_help_imports_no_rich_and_no_heavy_library(project: Project) -> None:
    code = (
        "import runpy, sys\n"
        "sys.argv = ['training', '--help']\n"
        "try:\n"
        "    runpy.run_module('my_project.experiments.training', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "from misen.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'numpy', 'torch', 's3fs', 'pandas'})\n"
        "print('HEAVY', heavy)\n"
    )
    proc = project.run("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert "--lr FLOAT" in proc.stdout and "experiment" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "HEAVY []"
