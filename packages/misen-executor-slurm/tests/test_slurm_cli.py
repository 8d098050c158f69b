"""The command-line backend against the real test cluster: submit, arrays, dependencies, status, cancel."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from misen.errors import ConfigError
from misen_executor_slurm._cli import CliBackend, JobState, SlurmError
from misen_executor_slurm._pyslurm import choose_backend, pyslurm_problem
from misen_executor_slurm._states import is_active
from misen_executor_slurm.testing import SlurmTestCluster


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.sh"
    path.write_text(
        f"#!/bin/bash\n#SBATCH --mem=64M\n#SBATCH --output={tmp_path}/{name}-%A_%a.log\n#SBATCH --chdir={tmp_path}\n{body}\n"
    )
    return path


def wait_final(backend: CliBackend, refs: list[str], timeout: float = 60) -> dict[str, JobState]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = backend.query(refs)
        if all(r in states and not is_active(states[r]) for r in refs):
            return states
        time.sleep(0.3)
    raise AssertionError(f"jobs {refs} did not end: {backend.query(refs)}")


def test_config_and_version(slurm_cluster: SlurmTestCluster) -> None:
    backend = CliBackend()
    assert backend.version().startswith(("22.", "23.", "24.", "25."))
    assert int(backend.config()["MaxArraySize"]) > 1
    assert backend.accounting() is False  # the test cluster has no slurmdbd


def test_plain_job_array_dependencies_and_cancel(slurm_cluster: SlurmTestCluster, tmp_path: Path) -> None:
    backend = CliBackend()
    ok = backend.submit(script(tmp_path, "ok", "echo hello $SLURM_JOB_ID > ok.txt"))
    arr = backend.submit(
        script(tmp_path, "arr", "echo $SLURM_ARRAY_TASK_ID > arr-$SLURM_ARRAY_TASK_ID.txt"), array="0-2%2"
    )
    after = backend.submit(
        script(tmp_path, "after", "cat arr-1.txt > after.txt"), dependency=[f"{arr}_1", ok]
    )
    bad = backend.submit(script(tmp_path, "bad", "exit 3"))
    doomed = backend.submit(script(tmp_path, "doomed", "touch doomed.txt"), dependency=[bad])
    slow = backend.submit(script(tmp_path, "slow", "sleep 120"))
    refs = [ok, f"{arr}_0", f"{arr}_1", f"{arr}_2", after, bad, doomed]
    # one squeue call answers for all of them, array elements one by one
    first = backend.squeue([*refs, slow])
    assert set(refs) <= set(first)
    states = wait_final(backend, refs)
    assert {r: states[r].state for r in refs} == {
        ok: "COMPLETED", f"{arr}_0": "COMPLETED", f"{arr}_1": "COMPLETED", f"{arr}_2": "COMPLETED",
        after: "COMPLETED", bad: "FAILED", doomed: "CANCELLED",
    }  # fmt: skip
    assert states[doomed].reason == "DependencyNeverSatisfied"
    assert (tmp_path / "after.txt").read_text().strip() == "1"
    assert not (tmp_path / "doomed.txt").exists()
    assert sorted(p.name for p in tmp_path.glob("arr-*.txt")) == ["arr-0.txt", "arr-1.txt", "arr-2.txt"]
    # scontrol (the fallback when squeue no longer lists a job) agrees
    sc = backend.scontrol(refs)
    assert {r: sc[r].state for r in (ok, f"{arr}_2", bad, doomed)} == {
        ok: "COMPLETED",
        f"{arr}_2": "COMPLETED",
        bad: "FAILED",
        doomed: "CANCELLED",
    }
    backend.cancel([slow, "99999999"])  # unknown ids are fine
    assert wait_final(backend, [slow])[slow].state == "CANCELLED"


def test_unknown_ids_and_errors(slurm_cluster: SlurmTestCluster, tmp_path: Path) -> None:
    backend = CliBackend()
    assert backend.squeue(["99999998"]) == {}
    assert backend.query(["99999998"]) == {}
    with pytest.raises(SlurmError, match=r"sbatch .* failed .*invalid partition|Invalid partition"):
        path = script(tmp_path, "p", "true")
        path.write_text(path.read_text().replace("#SBATCH --mem", "#SBATCH --partition=nope\n#SBATCH --mem"))
        backend.submit(path)
    empty_path = CliBackend(env={"PATH": str(tmp_path)})
    with pytest.raises(SlurmError, match="sbatch not found on PATH"):
        empty_path.submit(tmp_path / "x.sh")


def test_pyslurm_check_is_honest(slurm_cluster: SlurmTestCluster) -> None:
    version = CliBackend().version
    problem = pyslurm_problem(version)
    try:
        import pyslurm  # noqa: F401
    except ImportError:
        assert problem is not None and "pyslurm is not installed" in problem
        with pytest.raises(ConfigError, match='backend = "pyslurm" cannot be used: pyslurm is not installed'):
            choose_backend("pyslurm")
    assert choose_backend("cli").name == "cli"
    assert choose_backend("auto").name == ("cli" if problem else "pyslurm")

    class Stale:
        __version__ = "25.11.0"
        Jobs = object

    mismatch = pyslurm_problem(version, importer=lambda name: Stale)
    assert mismatch is not None and "built for Slurm 25.11" in mismatch and version()[:5] in mismatch

    class Matching:
        __version__ = version()
        Jobs = object

    assert pyslurm_problem(version, importer=lambda name: Matching) is None
