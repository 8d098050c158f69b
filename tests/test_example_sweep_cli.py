"""The example project through its real command line, at sweep scale: a sweep run by the local executor, then
``verify`` reproducing every task (the SVMs included: it recomputes under the recorded thread settings), the
plot stored as a result in the workspace, a CLI sweep's dry run and its results table."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
if importlib.util.find_spec("digits_study") is None:
    pytest.skip("the example project is not installed (uv sync installs it)", allow_module_level=True)


def _cli(module: str, *args: str, root: Path) -> subprocess.CompletedProcess[str]:
    # The example's project is the checkout: a configuration of its own keeps this test out of its .misen/.
    config = root / "misen.toml"
    if not config.exists():
        config.write_text(f'[executor]\ntype = "local"\n\n[workspace]\ntype = "disk"\ndirectory = "{root / ".misen"}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISEN_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    return subprocess.run(
        [sys.executable, "-m", f"digits_study.experiments.{module}", *args, "--config", str(config)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_example_sweep_verifies_and_stores_its_plot(tmp_path: Path) -> None:
    grid = ("--cs", "0.3,3", "--gammas", "0.01,0.3")
    run = _cli("sweep", *grid, "run", "--executor-type", "local", root=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "train_svm[c=0.3, gamma=0.3]" in run.stderr  # the units are told apart
    plot = Path(_cli("sweep", *grid, "result", "plot", root=tmp_path).stdout.strip())
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / ".misen" / "results") in plot.parents  # a result in the workspace, not a scratch file
    verify = _cli("sweep", *grid, "verify", root=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.splitlines()[-1] == "Verified 11 task(s): 11 reproduced, 0 differ"


def test_example_cli_sweep_dry_run_and_table(tmp_path: Path) -> None:
    sweep = ("--c", "1,3", "--gamma", "0.1")
    dry = _cli("training", *sweep, "run", "--dry-run", root=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[-1] == "dry run: 5 of 5 task(s) would run; nothing was run"
    assert not (tmp_path / ".misen" / "results").exists()
    assert _cli("training", *sweep, "--executor-type", "in-process", root=tmp_path).returncode == 0
    table = _cli("training", *sweep, "result", "metrics", "--table", root=tmp_path).stdout.splitlines()
    assert table[0].split() == ["c", "accuracy", "macro_f1", "n_test"]
    assert [row.split()[0] for row in table[1:]] == ["1", "3"]
