"""The optional pyslurm backend: used only when ``pyslurm`` imports and was built for the cluster's Slurm.

pyslurm releases track Slurm's major versions (pyslurm 25.11.x needs Slurm 25.11 and refuses others with
"Slurm version mismatch"); no release fits an older cluster such as Debian 12's Slurm 22.05. So the check is
strict and its answer is a plain sentence: `pyslurm_problem` says why pyslurm is not used, and `choose_backend`
falls back to the command-line backend under ``backend = "auto"``. Submission always goes through ``sbatch``
(the job scripts are the same either way); pyslurm only answers status queries, in one call per poll.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from misen.errors import ConfigError

from misen_executor_slurm._cli import CliBackend, JobState, base_id

__all__ = ["PyslurmBackend", "choose_backend", "pyslurm_problem"]


def _major(version: str) -> str:
    parts = version.strip().split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else version.strip()


def pyslurm_problem(
    cluster_version: Callable[[], str], importer: Callable[[str], Any] = importlib.import_module
) -> str | None:
    """Why pyslurm cannot be used here, or ``None`` when it can.

    Args:
        cluster_version: Returns the cluster's Slurm version (``"22.05.8"``).
        importer: How to import ``pyslurm`` (tests pass a stand-in module).
    """
    try:
        pyslurm = importer("pyslurm")
    except ImportError as exc:
        return f"pyslurm is not installed ({exc}); pip install pyslurm built for your cluster's Slurm version"
    except Exception as exc:  # a build against another libslurm fails at import with its own error
        return f"pyslurm failed to import ({type(exc).__name__}: {exc})"
    ours = str(getattr(pyslurm, "__version__", "") or "")
    try:
        theirs = cluster_version()
    except Exception as exc:
        return f"the cluster's Slurm version could not be read ({exc})"
    if not ours:
        return "pyslurm does not report its version, so it cannot be matched to the cluster"
    if _major(ours) != _major(theirs):
        return (
            f"pyslurm {ours} is built for Slurm {_major(ours)}, but the cluster runs Slurm {theirs}; "
            f"install the pyslurm release matching {_major(theirs)}"
        )
    if not hasattr(pyslurm, "db") and not hasattr(pyslurm, "Jobs"):
        return f"pyslurm {ours} lacks the pyslurm.Jobs API this backend uses"
    return None


class PyslurmBackend(CliBackend):
    """Status through ``pyslurm.Jobs.load()`` (one call per poll); everything else through the CLI."""

    name = "pyslurm"

    def __init__(self, module: Any, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self._pyslurm = module

    def squeue(self, job_refs: Sequence[str]) -> dict[str, JobState]:  # type: ignore[override]
        wanted = {base_id(j) for j in job_refs}
        out: dict[str, JobState] = {}
        for job in self._pyslurm.Jobs.load().values():
            array_id = getattr(job, "array_id", None)
            task = getattr(job, "array_task_id", None)
            key = f"{array_id}_{task}" if array_id and task is not None else str(job.id)
            if base_id(key) not in wanted:
                continue
            out[key] = JobState(
                key, str(job.state), str(getattr(job, "state_reason", "") or ""), "", "", "pyslurm"
            )
        return out


def choose_backend(kind: str, env: dict[str, str] | None = None) -> CliBackend:
    """The backend for the ``backend`` setting: ``"cli"``, ``"pyslurm"`` or ``"auto"``.

    Raises:
        ConfigError: ``backend = "pyslurm"`` and pyslurm cannot be used; the message says why.
    """
    cli = CliBackend(env)
    if kind == "cli":
        return cli
    problem = pyslurm_problem(cli.version)
    if problem is None:
        return PyslurmBackend(importlib.import_module("pyslurm"), env)
    if kind == "pyslurm":
        raise ConfigError(f'[executor] backend = "pyslurm" cannot be used: {problem}; use backend = "cli"')
    return cli
