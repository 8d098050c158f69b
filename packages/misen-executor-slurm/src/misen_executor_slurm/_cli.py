"""The default SLURM backend: sbatch, squeue, scontrol, sacct and scancel through subprocess (Slurm ≥ 22.05).

Every command inherits the caller's environment, so ``SLURM_CONF`` and the rest of a cluster's client settings
work as they do in the user's shell. Status queries are batched: one ``squeue`` for all of a run's jobs, then
one ``sacct`` (where accounting is on) or one ``scontrol show job`` for the ids squeue no longer lists.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs
from misen.errors import MisenError

__all__ = ["CliBackend", "JobState", "SlurmError", "base_id", "parse_scontrol_jobs", "parse_squeue"]


class SlurmError(MisenError):
    """A SLURM command failed; the message holds the command and what it printed."""


@attrs.frozen
class JobState:
    """The state of one job (or one array element, ``"123_4"``) as SLURM reports it."""

    job_id: str
    state: str
    reason: str = ""
    exit_code: str = ""
    node: str = ""
    #: Which command reported it: ``squeue``, ``sacct`` or ``scontrol``.
    source: str = ""


def base_id(job_ref: str) -> str:
    """``"123_4"`` → ``"123"`` (the id that names a whole array); ``"123"`` stays."""
    return job_ref.split("_", 1)[0]


SQUEUE_FORMAT = "%i|%T|%r|%N"


def parse_squeue(text: str) -> dict[str, JobState]:
    """Parse ``squeue -h -r --states=all -o '%i|%T|%r|%N'`` output."""
    out: dict[str, JobState] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 2 or not parts[0]:
            continue
        reason = parts[2] if len(parts) > 2 and parts[2] not in ("None", "(null)") else ""
        node = parts[3] if len(parts) > 3 and parts[3] not in ("(null)", "") else ""
        out[parts[0]] = JobState(parts[0], parts[1].split()[0], reason, "", node, "squeue")
    return out


def parse_sacct(text: str) -> dict[str, JobState]:
    """Parse ``sacct -n -P -X -o JobID,State,ExitCode,NodeList`` output (``CANCELLED by 0`` → ``CANCELLED``)."""
    out: dict[str, JobState] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 2 or not parts[0] or "." in parts[0]:
            continue
        state = parts[1].split()[0] if parts[1].split() else ""
        out[parts[0]] = JobState(
            parts[0],
            state,
            "",
            parts[2] if len(parts) > 2 else "",
            parts[3] if len(parts) > 3 else "",
            "sacct",
        )
    return out


_FIELD = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_/:]*)=")


def _fields(line: str) -> dict[str, str]:
    # Values may contain spaces (Command=..., Comment=...): a value runs until the next " Key=".
    matches = list(_FIELD.finditer(line))
    out: dict[str, str] = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
        out[m.group(1)] = line[m.end() : end].strip()
    return out


def _expand_tasks(spec: str) -> list[str]:
    spec = spec.split("%", 1)[0]
    tasks: list[str] = []
    for part in spec.split(","):
        if "-" in part:
            lo, hi = part.split("-", 1)
            if lo.isdigit() and hi.isdigit():
                tasks.extend(str(i) for i in range(int(lo), int(hi) + 1))
        elif part.isdigit():
            tasks.append(part)
    return tasks


def parse_scontrol_jobs(text: str) -> dict[str, JobState]:
    """Parse ``scontrol show job -o`` output (one job per line); array elements are keyed ``"ARRAY_TASK"``."""
    out: dict[str, JobState] = {}
    for line in text.splitlines():
        f = _fields(line.strip())
        if "JobId" not in f or "JobState" not in f:
            continue
        reason = f.get("Reason", "")
        state = JobState(
            f["JobId"], f["JobState"], "" if reason in ("None", "(null)") else reason, f.get("ExitCode", ""),
            f.get("NodeList", "") if f.get("NodeList") != "(null)" else "", "scontrol",
        )  # fmt: skip
        array_job, array_task = f.get("ArrayJobId"), f.get("ArrayTaskId")
        if array_job and array_task:
            for task in _expand_tasks(array_task):
                key = f"{array_job}_{task}"
                out[key] = attrs.evolve(state, job_id=key)
        else:
            out[f["JobId"]] = state
    return out


class CliBackend:
    """Talks to SLURM through its command-line clients.

    Args:
        env: Environment for the commands (default: this process's, read at each call).
        timeout: Seconds before a hung command counts as failed.
    """

    name = "cli"

    def __init__(self, env: dict[str, str] | None = None, timeout: float = 60) -> None:
        self.env = env
        self.timeout = timeout
        self._accounting: bool | None = None

    def _run(self, args: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        exe = shutil.which(args[0], path=(self.env or os.environ).get("PATH"))
        if exe is None:
            raise SlurmError(
                f"{args[0]} not found on PATH: the slurm executor needs the SLURM client commands "
                "(run misen on a cluster login node, or install slurm-client)"
            )
        try:
            proc = subprocess.run(
                [exe, *args[1:]],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SlurmError(f"{' '.join(args[:2])} did not answer within {self.timeout:.0f} s") from None
        if check and proc.returncode != 0:
            raise SlurmError(f"{_show(args)} failed (exit {proc.returncode}): {_text(proc)}")
        return proc

    # --- cluster ------------------------------------------------------------------------------------------------

    def version(self) -> str:
        """The Slurm version of the client commands (``"22.05.8"``)."""
        out = self._run(["sbatch", "--version"]).stdout.strip()
        return out.split()[-1] if out else ""

    def config(self) -> dict[str, str]:
        """``scontrol show config`` as a mapping (``MaxArraySize`` → ``"1001"``)."""
        out: dict[str, str] = {}
        for line in self._run(["scontrol", "show", "config"]).stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                out[key.strip()] = value.strip()
        return out

    # --- jobs ---------------------------------------------------------------------------------------------------

    def submit(self, script: Path, *, dependency: Sequence[str] = (), array: str | None = None) -> str:
        """Submit ``script`` with ``sbatch --parsable``; return the job id (an array's job id for arrays)."""
        args = ["sbatch", "--parsable"]
        if array:
            args.append(f"--array={array}")
        if dependency:
            args += [f"--dependency=afterok:{':'.join(dependency)}", "--kill-on-invalid-dep=yes"]
        args.append(str(script))
        out = self._run(args).stdout.strip().splitlines()
        job = out[-1].split(";", 1)[0].strip() if out else ""
        if not job.isdigit():
            raise SlurmError(f"sbatch printed no job id for {script} (output: {' / '.join(out)!r})")
        return job

    def squeue(self, job_refs: Iterable[str]) -> dict[str, JobState]:
        """One ``squeue`` call for all ``job_refs``; ids squeue does not know are absent from the answer."""
        ids = sorted({base_id(j) for j in job_refs})
        if not ids:
            return {}
        proc = self._run(
            ["squeue", "-h", "-r", "--states=all", "-o", SQUEUE_FORMAT, "-j", ",".join(ids)], check=False
        )
        if proc.returncode != 0:
            if "Invalid job id" in proc.stderr:
                return {}  # every id is gone (squeue fails only when none is known)
            raise SlurmError(f"squeue failed (exit {proc.returncode}): {_text(proc)}")
        return parse_squeue(proc.stdout)

    def accounting(self) -> bool:
        """Whether ``sacct`` works on this cluster (checked once)."""
        if self._accounting is None:
            try:
                proc = self._run(["sacct", "-n", "-X", "-j", "1", "-o", "JobID"], check=False)
                self._accounting = proc.returncode == 0
            except SlurmError:
                self._accounting = False
        return self._accounting

    def sacct(self, job_refs: Iterable[str]) -> dict[str, JobState]:
        ids = sorted({base_id(j) for j in job_refs})
        if not ids:
            return {}
        proc = self._run(
            ["sacct", "-n", "-P", "-X", "-o", "JobID,State,ExitCode,NodeList", "-j", ",".join(ids)]
        )
        return parse_sacct(proc.stdout)

    def scontrol(self, job_refs: Iterable[str]) -> dict[str, JobState]:
        """One ``scontrol show job -o`` call (every job the controller still knows), filtered to ``job_refs``."""
        wanted = {base_id(j) for j in job_refs}
        if not wanted:
            return {}
        proc = self._run(["scontrol", "show", "job", "-o"], check=False)
        if proc.returncode != 0:
            raise SlurmError(f"scontrol show job failed (exit {proc.returncode}): {_text(proc)}")
        return {
            k: v
            for k, v in parse_scontrol_jobs(proc.stdout).items()
            if base_id(k) in wanted or v.job_id in wanted
        }

    def query(self, job_refs: Sequence[str]) -> dict[str, JobState]:
        """States of ``job_refs`` (``"123"``, ``"123_4"``): squeue, then sacct or scontrol for the rest."""
        found = self.squeue(job_refs)
        missing = [j for j in job_refs if j not in found]
        if missing:
            extra = self.sacct(missing) if self.accounting() else self.scontrol(missing)
            found.update({k: v for k, v in extra.items() if k in missing})
        return found

    def cancel(self, job_refs: Iterable[str]) -> None:
        """``scancel`` these jobs in one call (unknown or finished ids are ignored by scancel)."""
        refs = sorted(set(job_refs))
        for i in range(0, len(refs), 1000):
            self._run(["scancel", *refs[i : i + 1000]], check=False)


def _show(args: Sequence[str]) -> str:
    shown = " ".join(args[:6])
    return shown + (" ..." if len(args) > 6 else "")


def _text(proc: subprocess.CompletedProcess[str]) -> str:
    text = (proc.stderr.strip() or proc.stdout.strip()).replace("\n", " / ")
    return text[:2000] or "no output"
