"""The slurm executor end to end on the real test cluster: graphs, arrays, failures, cancel, snapshot, cache."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from misen import cache
from misen.executor import RunEvents
from misen.runner import RunReport, build_plan, run
from misen.tasks import Task
from misen.testing import tasks as T
from misen.testing.contracts import ExecutorContract, _Quiet
from misen.workspace import Workspace
from misen_executor_slurm._commands import slurm_group
from misen_executor_slurm._runs import list_runs
from misen_executor_slurm.executor import SlurmExecutor
from misen_executor_slurm.testing import SlurmTestCluster

# Jobs ask for 512 MiB whatever the task declares (8 GiB by default), so the 2-core test node runs two at once.
FAST = {"poll_interval": 0.3, "max_poll_interval": 1.0, "default_flags": ["--mem=512M"]}

TASKS = """
from __future__ import annotations

import os
import time
from pathlib import Path

from misen import meta


@meta(id="SLURM-FIRST", cache=True)
def first(seconds: float, marker: str) -> int:
    Path(marker).write_text("running")
    time.sleep(seconds)
    return 1


@meta(id="SLURM-SECOND", cache=True)
def second(x: int) -> str:
    return "old code"


@meta(id="SLURM-SQUARE", cache=True, resources={"memory": 1})
def square(x: int) -> int:
    return x * x


@meta(id="SLURM-TOTAL", cache=True)
def total(values: list) -> int:
    return sum(values)


@meta(id="SLURM-TIMED", cache=True, resources={"time": 1})
def timed(seconds: float) -> int:
    time.sleep(seconds)
    return 0


@meta(id="SLURM-HOG", cache=True)
def hog(mib: int) -> int:
    block = bytearray(mib * 2**20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(5)
    return len(block)


@meta(id="SLURM-ENV", cache=True)
def env_value(name: str) -> str | None:
    return os.environ.get(name)
"""


class Project:
    """A throw-away project (src layout, .misen.toml, .env) with its own task module, cwd while the test runs."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.module = f"slurmproj_{uuid.uuid4().hex[:8]}"
        pkg = root / "src" / self.module
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        self.tasks_file = pkg / "tasks.py"
        self.tasks_file.write_text(textwrap.dedent(TASKS))
        (root / "pyproject.toml").write_text(f'[project]\nname = "{self.module}"\nversion = "0"\n')
        (root / ".misen.toml").write_text(
            '[workspace]\ntype = "disk"\ndirectory = ".misen"\n\n[executor]\ntype = "slurm"\n'
        )
        (root / ".env").write_text("MISEN_SLURM_DOTENV=from-dotenv\n")
        monkeypatch.chdir(root)
        monkeypatch.syspath_prepend(str(root / "src"))
        import importlib

        self.tasks: Any = importlib.import_module(f"{self.module}.tasks")
        from misen_workspace_disk.workspace import DiskWorkspace

        self.workspace = DiskWorkspace(directory=str(root / ".misen"))

    def executor(self, **settings: Any) -> SlurmExecutor:
        return SlurmExecutor(**{**FAST, **settings})

    def run(self, tasks: Any, **settings: Any) -> RunReport:
        return run(tasks, executor=self.executor(**settings), workspace=self.workspace, reporter=_Quiet())

    def runs_dir(self) -> Path:
        return self.root / ".misen" / "slurm"


@pytest.fixture
def project(slurm_cluster: SlurmTestCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    return Project(tmp_path / "proj", monkeypatch)


def statuses(report: RunReport) -> dict[str, str]:
    return {repr(report.units[u].root): o.status for u, o in report.outcomes.items()}


class TestSlurmContract(ExecutorContract):
    """misen's executor contract, every unit a real SLURM job."""

    @pytest.fixture
    def executor(self, slurm_cluster: SlurmTestCluster) -> SlurmExecutor:
        return SlurmExecutor(**FAST)

    @pytest.fixture
    def workspace(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
        from misen_workspace_disk.workspace import DiskWorkspace

        monkeypatch.chdir(tmp_path)
        return DiskWorkspace(directory=str(tmp_path / "ws"))


def test_sweep_goes_in_as_arrays_and_dependencies_hold(project: Project) -> None:
    squares = [Task(project.tasks.square, x=i) for i in range(5)]
    total = Task(project.tasks.total, values=[s.T for s in squares])
    report = project.run(total, max_array_size=3, array_throttle=2)
    assert report.ok, report.outcomes
    assert total.result(workspace=project.workspace) == sum(i * i for i in range(5))
    (record,) = list_runs(project.runs_dir())
    # two arrays (5 squares split by max_array_size=3) and one job for the total
    assert len(record.jobs) == 3
    refs = sorted(record.units[s.hash] for s in squares)
    assert (
        sum(1 for r in refs if r.endswith(("_0", "_1", "_2"))) == 5
        and refs[0].split("_")[0] == record.jobs[0]
    )
    scripts = sorted(p.read_text() for p in (project.runs_dir() / "runs" / record.run_id).glob("*-x*.sh"))
    assert len(scripts) == 2 and all("#SBATCH --mem=512M" in s for s in scripts)
    total_script = next((project.runs_dir() / "runs" / record.run_id).glob("*-total.sh")).read_text()
    assert "--mem=512M" in total_script
    prov = cache.provenance(project.workspace, squares[0]) or {}
    assert prov.get("executor") == "slurm" and str(prov.get("job_id", "")).startswith(record.jobs[0] + "_")
    assert record.finished


def test_failure_is_recorded_with_job_log_and_dependents_never_run(project: Project, tmp_path: Path) -> None:
    bad = Task(T.boom, x=3)
    dependent = Task(project.tasks.total, values=[bad.T, 1])
    report = project.run(dependent)
    by_task = {report.units[u].root.name: o for u, o in report.outcomes.items()}
    assert by_task["boom"].status == "failed" and "boom 3" in (by_task["boom"].error or "")
    assert by_task["total"].status == "skipped" and "did not succeed" in (by_task["total"].error or "")
    assert by_task["boom"].log and Path(by_task["boom"].log).exists()
    assert not dependent.is_cached(workspace=project.workspace)
    (record,) = list_runs(project.runs_dir())
    job = record.units[dependent.hash]
    state = subprocess.run(
        ["squeue", "-h", "--states=all", "-o", "%T|%r", "-j", job], capture_output=True, text=True
    ).stdout.strip()
    assert state.startswith("CANCELLED"), state  # never started


def test_out_of_memory_is_reported(project: Project) -> None:
    hog = Task(project.tasks.hog, mib=900)
    report = project.run(hog)
    (outcome,) = report.outcomes.values()
    assert outcome.status == "failed"
    assert "ran out of memory" in (outcome.error or "")
    assert outcome.log and "memory" in Path(outcome.log).read_text()
    assert "ran out of memory" in (cache.failure(project.workspace, hog) or {}).get("error", "")


def test_snapshot_isolation_and_dotenv(project: Project, tmp_path: Path) -> None:
    marker = tmp_path / "first-running"
    first = Task(project.tasks.first, seconds=3, marker=str(marker))
    second = Task(project.tasks.second, x=first.T)
    env = Task(project.tasks.env_value, name="MISEN_SLURM_DOTENV")
    result: dict[str, RunReport] = {}
    thread = threading.Thread(target=lambda: result.update(r=project.run([second, env])))
    thread.start()
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), "the first job never started"
    # second is queued behind first: edit the code it will run
    project.tasks_file.write_text(project.tasks_file.read_text().replace('"old code"', '"new code"'))
    thread.join(120)
    assert result["r"].ok, result["r"].outcomes
    assert second.result(workspace=project.workspace) == "old code"
    assert env.result(workspace=project.workspace) == "from-dotenv"
    assert "new code" in project.tasks_file.read_text()


def test_cached_work_is_never_submitted(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "sbatch-calls"
    wrapper_dir = tmp_path / "bin"
    wrapper_dir.mkdir()
    real = subprocess.run(["which", "sbatch"], capture_output=True, text=True).stdout.strip()
    (wrapper_dir / "sbatch").write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {real} "$@"\n')
    (wrapper_dir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper_dir}:{os.environ['PATH']}")
    task = Task(project.tasks.square, x=12)
    plan, _, _ = build_plan([task], project.workspace, run_id="planned-before-cached", executor="slurm")
    assert project.run(task).ok
    assert len(calls.read_text().splitlines()) == 1
    assert project.run(task).outcomes == {}  # the core drops cached work
    # a plan made before the result existed: the executor re-checks and submits nothing
    outcomes = project.executor().execute(plan, project.workspace, RunEvents())
    assert [o.status for o in outcomes.values()] == ["cached"]
    assert len(calls.read_text().splitlines()) == 1


def test_detach_then_cancel_command(project: Project, tmp_path: Path) -> None:
    quick = Task(project.tasks.square, x=7)
    report = project.run(quick, detach=True)
    (outcome,) = report.outcomes.values()
    assert (
        outcome.status == "queued"
        and report.ok
        and outcome.error
        and outcome.error.startswith("detached: queued as slurm job")
    )
    deadline = time.monotonic() + 60
    while not quick.is_cached(workspace=project.workspace) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert quick.result(workspace=project.workspace) == 49
    slow = Task(project.tasks.first, seconds=120, marker=str(tmp_path / "m"))
    after = Task(project.tasks.second, x=slow.T)
    report = project.run(after, detach=True)
    run_id = report.run_id
    result = CliRunner().invoke(slurm_group, ["cancel"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"cancelled run {run_id}: 2 job(s)" in result.output
    (record,) = [r for r in list_runs(project.runs_dir()) if r.run_id == run_id]
    assert record.finished
    jobs = ",".join(record.jobs)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = subprocess.run(
            ["squeue", "-h", "--states=all", "-o", "%T", "-j", jobs], capture_output=True, text=True
        ).stdout.split()
        if states == ["CANCELLED", "CANCELLED"]:
            break
        time.sleep(0.3)
    assert states == ["CANCELLED", "CANCELLED"]
    again = CliRunner().invoke(slurm_group, ["cancel"])
    assert again.exit_code != 0 and "no open slurm run to cancel" in again.output


def test_ctrl_c_cancels_what_the_run_queued(project: Project, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    slow = Task(project.tasks.first, seconds=120, marker=str(marker))
    after = Task(project.tasks.second, x=slow.T)

    def interrupt() -> None:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        project.run(after)
    assert marker.exists()
    (record,) = list_runs(project.runs_dir())
    assert record.finished and len(record.jobs) == 2
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["squeue", "-h", "--states=all", "-o", "%T", "-j", ",".join(record.jobs)],
            capture_output=True,
            text=True,
        )
        if out.stdout.split() == ["CANCELLED", "CANCELLED"]:
            break
        time.sleep(0.3)
    assert out.stdout.split() == ["CANCELLED", "CANCELLED"]
    assert (cache.failure(project.workspace, slow) or {}).get("status") == "cancelled"


@pytest.mark.slow
def test_time_limit_becomes_timeout(project: Project) -> None:
    timed = Task(project.tasks.timed, seconds=600)
    report = project.run(timed)
    (outcome,) = report.outcomes.values()
    assert outcome.status == "timeout", outcome
    assert "time limit" in (outcome.error or "")
    assert (cache.failure(project.workspace, timed) or {}).get("status") == "timeout"


def test_unwritable_snapshot_dir_is_a_clear_error(project: Project, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    from misen.errors import ConfigError

    with pytest.raises(ConfigError, match=r"snapshot_dir .*file/snapshots is not writable"):
        project.run(Task(project.tasks.square, x=1), snapshot_dir=str(blocker))


def test_submission_error_fails_units_cleanly(project: Project) -> None:
    report = project.run(Task(project.tasks.square, x=2), partition="no-such-partition")
    (outcome,) = report.outcomes.values()
    assert outcome.status == "failed" and "submission failed" in (outcome.error or "")
    assert "partition" in (outcome.error or "").lower()
    assert sys.executable  # the job scripts use this interpreter by default
