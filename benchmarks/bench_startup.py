"""Startup time of the command lines: ``misen --help`` and ``python -m pkg.exp --help`` (budget: 0.25 s each).

Each figure is the wall time of a fresh interpreter, measured in subprocesses. Users' installs have bytecode,
these machines may not (``PYTHONDONTWRITEBYTECODE=1``), so bytecode is compiled first into a private
``pycache_prefix`` (nothing is written into the environment) and every run uses it.

Run: ``python benchmarks/bench_startup.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

__all__ = ["BUDGET_S", "measure_startup"]

BUDGET_S = 0.25

_EXPERIMENT = """
from misen import Experiment, Task, meta


@meta(id="BENCHTRAIN", cache=True)
def train(lr: float, dim: int) -> dict:
    return {"lr": lr, "dim": dim}


class BenchExperiment(Experiment):
    lr: float = 0.001
    dim: int = 256
    lrs: list[float] = [0.001, 0.01]

    def tasks(self) -> dict[str, Task]:
        return {"model": Task(train, lr=self.lr, dim=self.dim)}


if __name__ == "__main__":
    BenchExperiment.cli()
"""


def _misen_script(python: str) -> str:
    script = Path(python).parent / "misen"
    return str(script) if script.exists() else "misen"


def _time(cmd: list[str], env: dict[str, str], cwd: Path, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
        out.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return out


def measure_startup(repeat: int = 10, python: str = sys.executable) -> dict[str, dict[str, float]]:
    """Time ``python -c pass``, ``misen --help`` and ``python -m benchpkg.exp --help``; return seconds per case.

    Returns:
        ``{case: {"min", "median", "max"}}`` in seconds, for cases ``python``, ``misen --help`` and
        ``python -m pkg.exp --help``.
    """
    with tempfile.TemporaryDirectory(prefix="misen-bench-startup-") as tmp:
        root = Path(tmp)
        (root / "src" / "benchpkg").mkdir(parents=True)
        (root / "src" / "benchpkg" / "__init__.py").write_text("")
        (root / "src" / "benchpkg" / "exp.py").write_text(textwrap.dedent(_EXPERIMENT))
        (root / "pyproject.toml").write_text('[project]\nname = "benchpkg"\nversion = "0"\n')
        prefix = root / "pycache"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPATH"] = str(root / "src")
        env["PYTHONPYCACHEPREFIX"] = str(prefix)
        # Compile everything a run imports into the private prefix (one warm-up run of each does that).
        warm = [
            [python, "-c", "pass"],
            [_misen_script(python), "--help"],
            [python, "-m", "benchpkg.exp", "--help"],
        ]
        for cmd in warm:
            subprocess.run(cmd, env=env, cwd=root, capture_output=True, check=True)
        cases = {
            "python": warm[0],
            "misen --help": warm[1],
            "python -m pkg.exp --help": warm[2],
        }
        out: dict[str, dict[str, float]] = {}
        for name, cmd in cases.items():
            times = _time(cmd, env, root, repeat)
            out[name] = {"min": min(times), "median": statistics.median(times), "max": max(times)}
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    results = measure_startup(args.repeat)
    for name, t in results.items():
        verdict = (
            ""
            if name == "python"
            else ("  ok" if t["median"] <= BUDGET_S else f"  OVER the {BUDGET_S}s budget")
        )
        print(f"{name:28s} median {t['median'] * 1000:7.1f} ms  min {t['min'] * 1000:7.1f} ms{verdict}")


if __name__ == "__main__":
    main()
