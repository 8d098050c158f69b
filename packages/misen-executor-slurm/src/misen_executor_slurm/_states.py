"""What a SLURM job state means for a work unit: still going, or which outcome (failed, timeout, cancelled...).

The worker inside a job writes its own outcome file, which wins whenever it exists. SLURM's state only decides
when the job ended without one: killed for time or memory, cancelled, its node failed, or it vanished.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from misen.executor import UnitOutcome

from misen_executor_slurm._cli import JobState

__all__ = ["ACTIVE_STATES", "is_active", "outcome_from_state", "read_outcome"]

#: States of a job that has not ended (``COMPLETING``: ended, epilog running; its outcome file may exist).
ACTIVE_STATES = frozenset(
    {
        "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
        "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD", "SPECIAL_EXIT", "POWER_UP_NODE",
    }
)  # fmt: skip
_MEMORY_MARKERS = (
    "Exceeded job memory limit",
    "exceeded memory limit",
    "oom-kill",
    "Out Of Memory",
    "OUT_OF_MEMORY",
)


def is_active(state: JobState | None) -> bool:
    return state is not None and state.state in ACTIVE_STATES


def read_outcome(path: Path, *, job: str, log: Path) -> UnitOutcome | None:
    """The outcome the worker wrote, with the job log filled in when the worker had none; ``None`` if absent."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return UnitOutcome(
            status="failed", error=f"job {job} wrote an unreadable outcome {path} ({exc})", log=str(log)
        )
    outcome = UnitOutcome.from_dict(data)
    if outcome.log is None or not outcome.where:
        import attrs

        outcome = attrs.evolve(
            outcome, log=outcome.log or str(log), where=outcome.where or f"slurm job {job}"
        )
    return outcome


def _log_tail(log: Path, size: int = 16384) -> str:
    try:
        with open(log, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


_ERROR_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?([A-Z]\w*(?:Error|Exception|Interrupt|Exit))(?:: (.*))?$")


def _python_error(tail: str) -> str | None:
    """The message of the exception a Python traceback in ``tail`` ends with (misen's own errors say what and
    where in their message), or ``None`` when the log holds no traceback."""
    if "Traceback (most recent call last):" not in tail:
        return None
    lines = [line for line in tail.rsplit("Traceback (most recent call last):", 1)[1].splitlines() if line.strip()]
    for line in reversed(lines):
        match = _ERROR_LINE.match(line.strip())
        if match:
            return match.group(2) or match.group(1)
    return None


def outcome_from_state(job: str, state: JobState | None, log: Path) -> UnitOutcome:
    """The outcome of a job that ended without writing an outcome file (``state`` None: SLURM forgot it)."""

    def outcome(status: str, error: str) -> UnitOutcome:
        return UnitOutcome(status=status, error=error, log=str(log), where=f"slurm job {job}")

    if state is None:
        return outcome(
            "failed", f"job {job} vanished without writing an outcome (cancelled, OOM-killed or node failure); see {log}"
        )
    name, reason = state.state, state.reason
    detail = f" ({reason})" if reason else ""
    exit_code = f", exit code {state.exit_code}" if state.exit_code and state.exit_code != "0:0" else ""
    if name == "TIMEOUT":
        return outcome("timeout", f"job {job} reached its time limit (TIMEOUT)")
    if name in ("CANCELLED", "DEADLINE") and reason == "DependencyNeverSatisfied":
        return outcome("skipped", f"job {job} was cancelled by SLURM: a dependency failed")
    if name == "OUT_OF_MEMORY" or any(m in _log_tail(log) for m in _MEMORY_MARKERS):
        return outcome("failed", f"job {job} ran out of memory ({name}{exit_code}); raise the task's memory")
    crash = _python_error(_log_tail(log))
    if crash and name in ("FAILED", "COMPLETED"):
        # The worker itself failed before it could write an outcome (a full or read-only workspace): its error.
        return outcome("failed", f"job {job} failed: {crash}")
    known = {
        "CANCELLED": ("cancelled", f"job {job} was cancelled{detail}"),
        "NODE_FAIL": ("failed", f"job {job} failed: its node failed (NODE_FAIL{detail})"),
        "PREEMPTED": ("failed", f"job {job} was preempted (PREEMPTED)"),
        "BOOT_FAIL": ("failed", f"job {job} failed: its node did not boot (BOOT_FAIL)"),
        "COMPLETED": ("failed", f"job {job} completed but its worker wrote no outcome; see {log}"),
    }
    return outcome(*known.get(name, ("failed", f"job {job} ended {name}{detail}{exit_code}; see {log}")))
