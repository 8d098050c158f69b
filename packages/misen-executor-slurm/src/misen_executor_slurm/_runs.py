"""Run records: which SLURM jobs each run queued, kept beside its scripts so ``misen slurm cancel`` finds them.

A run's directory is ``<base>/runs/<run id>/`` (``base``: ``snapshot_dir``, or ``slurm/`` in the workspace's
local directory) and holds ``jobs.json``, the job scripts, ``units/`` (payloads and outcomes) and ``logs/``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import attrs

__all__ = ["RunRecord", "find_run", "list_runs"]

RECORD = "jobs.json"


@attrs.define
class RunRecord:
    """What one run queued."""

    run_id: str
    directory: Path
    #: Every job id the run submitted (array job ids name whole arrays).
    jobs: list[str] = attrs.field(factory=list)
    #: Unit id → job reference (``"123"``, or ``"123_4"`` for an array element).
    units: dict[str, str] = attrs.field(factory=dict)
    submitted: float = attrs.field(factory=time.time)
    detached: bool = False
    finished: bool = False
    slurm_conf: str | None = attrs.field(factory=lambda: os.environ.get("SLURM_CONF"))

    def save(self) -> None:
        data = attrs.asdict(self)
        data["directory"] = str(self.directory)
        tmp = self.directory / f".{RECORD}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.directory / RECORD)

    def is_open(self) -> bool:
        """Not marked finished, and some unit has no outcome yet (a detached run stays open until it ends)."""
        if self.finished:
            return False
        return not self.units or any(
            not (self.directory / "units" / f"{u}.outcome.json").exists() for u in self.units
        )

    @classmethod
    def load(cls, directory: Path) -> RunRecord:
        data: dict[str, Any] = json.loads((directory / RECORD).read_text())
        data["directory"] = directory
        known = {a.name for a in attrs.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def list_runs(base: Path) -> list[RunRecord]:
    """The runs recorded under ``base``, oldest first."""
    runs_dir = base / "runs"
    out = []
    if runs_dir.is_dir():
        for entry in runs_dir.iterdir():
            if (entry / RECORD).is_file():
                try:
                    out.append(RunRecord.load(entry))
                except (OSError, ValueError, TypeError):
                    continue
    return sorted(out, key=lambda r: (r.submitted, r.run_id))


def find_run(bases: list[Path], run_id: str | None) -> RunRecord | None:
    """The run ``run_id`` (a unique prefix is enough), or the latest unfinished run when ``run_id`` is None."""
    runs = [r for base in bases for r in list_runs(base)]
    if run_id is None:
        open_runs = [r for r in runs if r.is_open()]
        return max(open_runs, key=lambda r: r.submitted) if open_runs else None
    matches = [r for r in runs if r.run_id == run_id] or [r for r in runs if r.run_id.startswith(run_id)]
    return matches[0] if len(matches) == 1 else None
