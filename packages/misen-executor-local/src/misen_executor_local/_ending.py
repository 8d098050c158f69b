"""How units end when their worker cannot say so itself, and the unit logs (``misen logs --job``)."""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from misen import cache
from misen.executor import UnitOutcome, WorkUnit
from misen.tasklog import task_logs
from misen.workspace import hostname, writer_is_dead

if TYPE_CHECKING:
    from misen.workspace import Workspace

    from misen_executor_local._pool import Busy

__all__ = ["end_of", "new_spool", "spool_log", "sweep_spools", "task_log", "write_unit_log"]

_attempts = itertools.count()


def end_of(ws: Workspace, busy: Busy, unit: WorkUnit) -> UnitOutcome | None:
    """How a unit of a batch whose worker is gone ended, if it did: as reported, else as the workspace says (a
    stored result, or a failure recorded since the batch started)."""
    reported = busy.reported.get(unit.id)
    if reported is not None:
        return UnitOutcome.from_dict(reported)
    with contextlib.suppress(Exception):
        if unit.root.cacheable and cache.is_cached(ws, unit.root):
            return UnitOutcome(status="done", where=busy.where)
        failure = cache.failure(ws, unit.root)
        if failure is not None and float(failure.get("time", 0.0)) >= busy.start:
            if failure.get("status") in ("failed", "skipped"):
                return UnitOutcome(status=str(failure["status"]), error=str(failure.get("error", "")), where=busy.where)
    return None


def task_log(ws: Workspace, unit: WorkUnit, since: float) -> str | None:
    """The task log the worker was writing when it died (the newest one, begun after the unit started)."""
    with contextlib.suppress(Exception):
        for entry in task_logs(ws, unit.root):
            if entry.mtime >= since - 1.0 and entry.path is not None:  # a log kept in a record is not a lost one
                return str(entry.path)
            break
    return None


def new_spool(ws: Workspace) -> str | None:
    """A spool file for a new worker (`misen.tasklog.Spool`: the worker's output goes there, and a quick task's
    log into its record, instead of a log file per task), in the workspace's local ``tmp/`` (the file system of
    its logs, so that a log that matters is the same file under a second name); ``None`` for a workspace with
    no local directory. The name says which process it belongs to (this one), so the disk workspace's sweep
    removes it if this process dies before it does."""
    with contextlib.suppress(Exception):
        root = ws.local_root()
        if root is not None:
            tmp = Path(root) / "tmp"
            tmp.mkdir(parents=True, exist_ok=True)
            if str(tmp) not in _swept:
                _swept.add(str(tmp))
                sweep_spools(tmp)
            return str(tmp / f"spool-{os.getpid()}-{secrets.token_hex(4)}-{hostname()}")
    return None


_swept: set[str] = set()


def sweep_spools(tmp: Path) -> list[Path]:
    """Remove the spools in ``tmp`` of executors of this host that are gone (a crash, a kill): the disk
    workspace's own sweep would find them too, but a workspace whose local folder is only a cache (S3) has none.
    Spools of live processes, and of other hosts, stay. Returns what was removed."""
    removed: list[Path] = []
    with contextlib.suppress(OSError), os.scandir(tmp) as entries:
        for entry in entries:
            if not entry.name.startswith("spool-"):
                continue
            with contextlib.suppress(OSError):
                if writer_is_dead(entry.name, entry.stat(follow_symlinks=False).st_mtime):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def spool_log(ws: Workspace, unit: WorkUnit, spool: str | None) -> str | None:
    """The log of the attempt a worker was running when it died, from its spool (what the task printed before),
    made an attempt log of the unit's task; ``None`` if the spool holds nothing."""
    if spool is None:
        return None
    with contextlib.suppress(Exception):
        if os.path.getsize(spool) == 0:
            return None
        attempt = f"{time.strftime('%Y%m%d-%H%M%S')}-lost-{next(_attempts)}"
        path = ws.log_path("task", unit.root.hash, attempt)
        if not _link(Path(spool), path):
            shutil.copyfile(spool, path)
        os.unlink(spool)
        ws.publish_log("task", unit.root.hash, attempt, path, final=True)
        return str(path)
    return None


def _link(source: Path, path: Path) -> bool:
    """Make ``path`` another name of ``source``; ``False`` if the file system cannot."""
    try:
        os.link(source, path)
    except OSError:
        return False
    return True


def write_unit_log(
    ws: Workspace, run_id: str, node: str, busy: Busy, ended: list[tuple[WorkUnit, UnitOutcome]]
) -> None:
    """A short record of where units ran and how they ended: one file for the units of a batch that ended
    together, under each unit's name (hard links where the workspace's logs are on a file system that has them,
    else a copy each)."""
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(busy.start))
    lines = []
    if len(busy.units) > 1:
        lines.append(f"ran in a batch of {len(busy.units)} units, one after the other on the same worker")
    for unit, outcome in ended:
        lines += [
            f"unit {unit.label} ({unit.id})",
            f"tasks: {', '.join(t.name for t in unit.tasks)}",
            f"run {run_id} on {node}, {busy.where}, started {started}",
            f"ended {outcome.status} after {time.time() - busy.start:.2f}s"
            + (f": {outcome.error}" if outcome.error else ""),
        ]
        if outcome.log:
            lines.append(f"task log: {outcome.log}")
    text = "\n".join(lines) + "\n"
    first: Path | None = None
    for unit, _ in ended:
        attempt = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{next(_attempts)}"
        with contextlib.suppress(Exception):
            path = ws.log_path("unit", unit.id, attempt)
            if first is None or not _link(first, path):
                path.write_text(text)
                first = first or path
            ws.publish_log("unit", unit.id, attempt, path, final=True)
