"""Issue 16, points 2-4 and 7 through the real command line: the workspace resolved against the project root
(from a sub-folder, from another folder, in a uv workspace), ``misen config`` saying which root and why, the
workspace's own ``.gitignore``, the ``.env.local`` warning, ``verify`` under the recorded conditions, and the
checks and wording of point 7 (duplicate ids, argument types, install hints, ``--help``, ``RunReport``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import pytest
from test_cli_project import Project, make_project, one_error_line, pycache_dir


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "proj", pycache_dir())


TRAIN = "experiments.training"


def _from(project: Project, cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env={**project.env, **(env or {})}, capture_output=True, text=True, timeout=120
    )


def test_the_workspace_follows_the_project_not_the_current_directory(project: Project, tmp_path: Path) -> None:
    assert project.exp(TRAIN, "--dim", "4").returncode == 0
    assert len(project.executed()) == 3
    sub = project.root / "src" / "my_project"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "pyproject.toml").write_text('[project]\nname = "other"\nversion = "0"\n')
    for cwd in (sub, elsewhere):
        proc = _from(project, cwd, "-m", "my_project.experiments.training", "--dim", "4")
        assert proc.returncode == 0, proc.stderr
        assert "0 ran, 3 cached" in proc.stderr, (cwd, proc.stderr)
    assert project.executed() == []
    assert not (sub / ".misen").exists() and not (elsewhere / ".misen").exists()
    config = _from(project, elsewhere, "-m", "misen.cli", "config")
    assert config.stdout.splitlines()[0] == (
        f"project root: {elsewhere.resolve()} (the nearest directory at or above {elsewhere.resolve()} with pyproject.toml)"
    )
    # Unset keys show their default values, not "(defaults)".
    assert '  type = "disk"    # default' in config.stdout and "(defaults)" not in config.stdout


def test_a_uv_workspace_member_uses_the_workspace_root(tmp_path: Path) -> None:
    root = tmp_path / "mono"
    member = root / "examples" / "study"
    member.mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "mono"\nversion = "0"\n[tool.uv.workspace]\nmembers = ["examples/*"]\n')
    (member / "pyproject.toml").write_text('[project]\nname = "study"\nversion = "0"\n')
    from misen.project_root import search

    found, why = search(member)
    assert found == root.resolve() and "uv workspace" in why
    (member / ".misen.toml").write_text("")
    assert search(member)[0] == member.resolve()  # its own .misen.toml makes it a misen project of its own


def test_the_workspace_ignores_itself_and_env_local_is_warned_about_once(project: Project) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    subprocess.run(["git", "init", "-q"], cwd=project.root, check=True)
    project.write(".env.local", "SECRET=1\n")
    proc = project.exp(TRAIN, "--dim", "4")
    assert proc.returncode == 0, proc.stderr
    assert (project.root / ".misen" / ".gitignore").read_text().splitlines()[-1] == "*"
    warnings = [ln for ln in proc.stderr.splitlines() if ".env.local" in ln and "does not ignore" in ln]
    assert len(warnings) == 1, proc.stderr
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=project.root, capture_output=True, text=True
    ).stdout
    assert ".misen/" not in status
    project.write(".gitignore", ".env.local\n")
    quiet = project.exp(TRAIN, "--dim", "8")
    assert quiet.returncode == 0 and ".env.local" not in quiet.stderr


NOISY_THREADS = '''
import os
import random

from misen import Experiment, Task, meta


@meta(id="THREADS4CL", cache=True)
def threads(x: int) -> str:
    return f"{x} with OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"


@meta(id="RANDOM4CL1", cache=True)
def noisy(x: int) -> float:
    return random.random()


class Threads(Experiment):
    x: int = 1

    def tasks(self) -> dict[str, Task]:
        return {"threads": Task(threads, x=self.x), "noisy": Task(noisy, x=self.x)}


if __name__ == "__main__":
    Threads.cli()
'''


def test_verify_recomputes_under_the_recorded_thread_settings(project: Project) -> None:
    project.write("src/my_project/experiments/threads.py", NOISY_THREADS)
    env = {"OMP_NUM_THREADS": "7"}  # the shell's setting; the local executor gives each task its own
    assert project.exp("experiments.threads", "--executor-type", "local", env=env).returncode == 0
    stored = project.exp("experiments.threads", "result", "threads", env=env).stdout.strip()
    assert stored == "1 with OMP_NUM_THREADS=1"
    proc = project.exp("experiments.threads", "verify", env=env)
    lines = proc.stdout.splitlines()
    assert any(ln.startswith("✓ threads: reproduced") for ln in lines), proc.stdout
    bad = lines.index(next(ln for ln in lines if ln.startswith("✗ noisy: NOT reproduced")))
    assert "the task itself is non-deterministic" in lines[bad + 1]
    assert proc.returncode == 1


DUPLICATE = '''
from misen import Experiment, Task, meta


@meta(id="TRAIN4CL1X", cache=True)
def copied(lr: float) -> float:
    return lr


class Dup(Experiment):
    def tasks(self) -> dict[str, Task]:
        from my_project.steps import train

        return {"a": Task(train, lr=0.1, dim=2), "b": Task(copied, lr=0.1)}


if __name__ == "__main__":
    Dup.cli()
'''


def test_duplicate_ids_fail_fill_and_run_in_one_line(project: Project) -> None:
    project.write("src/my_project/experiments/dup.py", DUPLICATE)
    fill = project.misen("fill")
    line = one_error_line(fill)
    assert "id 'TRAIN4CL1X' is used by 2 task functions" in line and "give all but one a fresh id (misen fill --renew " in line
    run = project.exp("experiments.dup")
    assert "have the same @meta id 'TRAIN4CL1X'" in one_error_line(run)


def test_a_wrongly_typed_task_argument_is_one_line(project: Project) -> None:
    project.write(
        "src/my_project/experiments/typo.py",
        "from misen import Experiment, Task\nfrom my_project.steps import train\n\n"
        "class Typo(Experiment):\n    def tasks(self):\n        return {'t': Task(train, lr='fast', dim=3)}\n\n"
        "if __name__ == '__main__':\n    Typo.cli()\n",
    )
    line = one_error_line(project.exp("experiments.typo", "list"))
    assert "Task(train): argument 'lr' must be float, got 'fast' (str)" in line


def test_help_and_the_run_report(project: Project) -> None:
    helped = project.exp(TRAIN, "--help")
    assert "slurm" not in helped.stdout
    report = project.run("-c", "from my_project.configs.training import __config__ as c; print(repr(c.run()))")
    assert report.returncode == 0, report.stderr
    last = report.stdout.strip().splitlines()[-1]
    assert last.startswith("RunReport(ok=True, 3 done, 0 already cached, duration=") and len(last) < 120
