"""The seed, as written: "drop a pixi.lock in the project root and misen will materialize a matching conda
environment alongside your uv venv when taking execution snapshots", through the experiment command line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

FLOW = """
from misen import Experiment, Task

from {module}.tasks import native


class NativeExperiment(Experiment):
    n: int = 1

    def tasks(self) -> dict[str, Task]:
        return {{"native": Task(native, n=self.n)}}


if __name__ == "__main__":
    NativeExperiment.cli()
"""


def _cli(p: Any, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    flow = p.root / "src" / p.module / "flow.py"
    if not flow.exists():
        flow.write_text(textwrap.dedent(FLOW.format(module=p.module)))
    base = {k: v for k, v in os.environ.items() if k != "CONDA_PREFIX"}
    base["PYTHONPATH"] = str(p.root / "src")
    return subprocess.run(
        [sys.executable, "-m", f"{p.module}.flow", *args],
        cwd=p.root,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_dropping_a_pixi_lock_is_enough(conda_project: Any) -> None:
    p = conda_project
    (p.root / ".misen.toml").write_text('[executor]\ntype = "local"\n')  # nothing about environments
    ran = _cli(p, "run", "--n", "5")
    assert ran.returncode == 0, ran.stderr
    assert "misen: building the conda environment of pixi.lock, environment default, linux-64" in ran.stderr
    shown = _cli(p, "--n", "5", "result", "native")
    assert shown.returncode == 0, shown.stderr
    assert "hello from misen-demo in" in shown.stdout and "forty-two" in shown.stdout
    # The snapshot the run used holds the lock it was built from.
    (snapshot,) = (p.root / ".misen" / "snapshots").iterdir()
    assert (snapshot / "pixi.lock").read_text() == (p.root / "pixi.lock").read_text()
    why = _cli(p, "--n", "5", "why", "native")
    assert why.returncode == 0, why.stderr
    assert "native environment: conda default (pixi.lock, environment default, linux-64)" in why.stdout


def test_bad_lock_is_one_error_line(conda_project: Any) -> None:
    p = conda_project
    (p.root / "pixi.lock").write_text("version: 6\nenvironments: [unclosed\n")
    ran = _cli(p, "run", "--n", "6")
    assert ran.returncode != 0
    assert "Traceback" not in ran.stderr, ran.stderr
    errors = [line for line in ran.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "pixi.lock: not a pixi.lock that can be read" in errors[0], ran.stderr


def test_without_the_plugin_misen_says_what_to_install(conda_project: Any) -> None:
    p = conda_project
    ran = _cli(p, "run", "--n", "7", env={"MISEN_DISABLE_PLUGINS": "env-conda"})
    assert 'pixi.lock found, but no environment plugin is installed' in ran.stderr
    assert 'pip install "misen[conda]"' in ran.stderr
