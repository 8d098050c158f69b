"""The `Workspace` interface: storage primitives for results, records, locks, logs and scratch directories.

A plugin implements these primitives and nothing else; the caching rules built on them (what is cached, stale or
failed, early cutoff, healing damage) live once, in `misen.cache`, so every workspace behaves alike.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs

from misen.errors import MisenError
from misen.session import Session, current_session
from misen.settings import structure_settings, unstructure_settings

__all__ = [
    "LockHolder",
    "LogEntry",
    "Workspace",
    "WorkspaceSettings",
    "hostname",
    "pid_alive",
    "process_id",
    "process_started_after",
    "resolve_workspace",
    "writer_is_dead",
]

@functools.cache
def hostname() -> str:
    """This machine's name (asked once per process; a fork inherits the same machine)."""
    return socket.gethostname()


@functools.cache
def process_id() -> int:
    """This process's pid, asked once: ``os.getpid()`` is a system call, and a task asks several times. A child
    made by ``os.fork`` (multiprocessing included) asks again."""
    return os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=process_id.cache_clear)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (another user's process counts too)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_started_after(pid: int, when: float) -> bool:
    """Whether process ``pid`` on this host started after ``when``: its pid was reused since a file named after
    it was written at ``when``. ``False`` where that cannot be told (no ``/proc``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        btime = next(
            float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime")
        )
    except (OSError, ValueError, IndexError, StopIteration):
        return False
    # btime has a one-second resolution: allow for it.
    return btime + ticks / os.sysconf("SC_CLK_TCK") > when + 2.0


def writer_is_dead(name: str, mtime: float) -> bool | None:
    """Whether the process that made a scratch entry named ``<what>-<pid>-<random>-<host>`` (last changed at
    ``mtime``) is gone: ``None`` when that cannot be known here (another host's entry, or a name without a pid).
    A pid now used by a process that started after the entry was last changed is a reused pid: its writer is
    gone too."""
    parts = name.split("-", 3)
    if len(parts) != 4 or parts[3] != hostname() or not parts[1].isdigit():
        return None
    pid = int(parts[1])
    return not pid_alive(pid) or process_started_after(pid, mtime)


@attrs.frozen
class LockHolder:
    """Who holds a task lock: enough to find the process and judge whether it is still alive."""

    host: str
    pid: int
    since: float
    run: str = ""
    task: str = ""
    #: When the holder's run started (``time.time()``; 0 if unknown): an earlier run waits for a later one.
    run_started: float = 0.0

    @classmethod
    def current(cls, run: str = "", task: str = "", run_started: float = 0.0) -> LockHolder:
        return cls(host=hostname(), pid=process_id(), since=time.time(), run=run, task=task, run_started=run_started)

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"host {self.host}, pid {self.pid}, since {started}"

    def as_dict(self) -> dict[str, Any]:
        # Spelled out rather than attrs.asdict, which costs several times more: a lock is taken for every task.
        return {
            "host": self.host,
            "pid": self.pid,
            "since": self.since,
            "run": self.run,
            "task": self.task,
            "run_started": self.run_started,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LockHolder:
        return cls(
            host=str(data.get("host", "?")),
            pid=int(data.get("pid", 0)),
            since=float(data.get("since", 0.0)),
            run=str(data.get("run", "")),
            task=str(data.get("task", "")),
            run_started=float(data.get("run_started", 0.0) or 0.0),
        )


@attrs.frozen
class LogEntry:
    """One attempt's log: a file (``path``), or the text kept in the task's record (``text``, ``path`` is
    ``None``: the log of a quick attempt that succeeded, see `misen.tasklog`)."""

    attempt: str
    path: Path | None
    mtime: float
    text: str | None = None

    def read(self) -> str:
        if self.text is not None or self.path is None:
            return self.text or ""
        try:
            return self.path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def where(self) -> str:
        """The file's path, or a note that the log is kept in the task record."""
        return str(self.path) if self.path is not None else "in the task record"


@attrs.define
class WorkspaceSettings:
    """Settings shared by all workspaces (plugins subclass this with their own fields)."""


class Workspace:
    """Base class of every workspace. Subclasses implement the primitives marked *primitive*.

    Class attributes: ``PLUGIN_NAME`` (``"disk"``), optional ``ALIASES``, and ``Settings`` (an attrs class the
    ``[workspace]`` section of ``.misen.toml`` is structured into).
    """

    PLUGIN_NAME: ClassVar[str] = ""
    ALIASES: ClassVar[tuple[str, ...]] = ()
    Settings: ClassVar[type[Any]] = WorkspaceSettings
    #: Whether other processes (workers, jobs) can open this workspace from its `spec`.
    SHARED_ACROSS_PROCESSES: ClassVar[bool] = True

    def __init__(self, settings: Any = None, **overrides: Any) -> None:
        if settings is None:
            settings = structure_settings(self.Settings, overrides, where=f"{type(self).__name__}(...)")
        elif overrides:
            settings = attrs.evolve(settings, **overrides)
        self.settings = settings

    # --- identity of the workspace itself ---------------------------------------------------------------------

    def spec(self) -> dict[str, Any]:
        """``{"type", "settings"}``: enough for a worker process to open the same workspace."""
        return {"type": self.PLUGIN_NAME, "settings": unstructure_settings(self.settings)}

    @staticmethod
    def from_spec(spec: dict[str, Any]) -> Workspace:
        """The workspace described by ``spec``, opened through the current session (once per session)."""
        return current_session().open_workspace(spec)

    def describe(self) -> str:
        return self.PLUGIN_NAME

    def local_root(self) -> Path | None:
        """A local directory of this workspace (snapshots, staging); ``None`` if it has none."""
        return None

    # --- primitives: records ------------------------------------------------------------------------------------

    def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        """*Primitive.* The record ``kind/key``, or ``None``. Never writes."""
        raise NotImplementedError

    def put_record(self, kind: str, key: str, value: dict[str, Any], *, durable: bool = True) -> None:
        """*Primitive.* Write the record atomically (a reader sees the old or the new value, never a mix).

        ``durable=False`` allows the write to reach stable storage later, at `sync` (a crash before then may lose
        the record, never tear it into something that reads as valid).
        """
        raise NotImplementedError

    def delete_record(self, kind: str, key: str) -> None:
        """*Primitive.* Remove the record if present."""
        raise NotImplementedError

    def iter_records(self, kind: str) -> Iterator[str]:
        """*Primitive.* The keys of every record of ``kind``."""
        raise NotImplementedError

    def get_records(self, kind: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Many records at once (workspaces may batch this); missing keys are left out."""
        out = {}
        for key in keys:
            rec = self.get_record(kind, key)
            if rec is not None:
                out[key] = rec
        return out

    def put_records(self, names: list[tuple[str, str]], value: dict[str, Any], *, durable: bool = True) -> None:
        """Write the same record under several ``(kind, key)`` names, in order, each name atomically as with
        `put_record` (a reader of one name sees its old or its new value).

        `misen.cache` writes a task's ``resolved``, ``task`` and ``key`` records through this, as one object
        holding the fields of all three. The default writes each name separately; a workspace may write the
        value once and make the other names point at it (the disk workspace: hard links). The names stay
        independent afterwards: a later `put_record` or `delete_record` of one never changes the others.
        """
        for kind, key in names:
            self.put_record(kind, key, dict(value), durable=durable)

    def has_results(self, result_hashes: list[str]) -> set[str]:
        """Which of ``result_hashes`` are stored (`has_result` of many at once; workspaces may batch this)."""
        return {rh for rh in result_hashes if self.has_result(rh)}

    # --- primitives: results --------------------------------------------------------------------------------------

    def has_result(self, result_hash: str) -> bool:
        """*Primitive.* Whether a committed result with this hash exists (a cheap check, no read)."""
        raise NotImplementedError

    def staging_dir(self) -> contextlib.AbstractContextManager[Path]:
        """*Primitive.* A fresh empty local directory to serialize a result into; removed on exit."""
        raise NotImplementedError

    def commit_result(self, result_hash: str, staged: Path, *, durable: bool = True) -> None:
        """*Primitive.* Publish the staged directory as result ``result_hash``, atomically.

        If that result already exists, keep the existing one. After this returns, `has_result` is true.
        ``durable=False``: as for `put_record`.
        """
        raise NotImplementedError

    def sync(self) -> None:
        """Make everything written with ``durable=False`` so far durable (called at the end of every run)."""

    def open_result(self, result_hash: str) -> Path | None:
        """*Primitive.* A local directory holding the result's files, or ``None`` if it is not stored."""
        raise NotImplementedError

    def delete_result(self, result_hash: str) -> None:
        """*Primitive.* Remove a stored result."""
        raise NotImplementedError

    def iter_results(self) -> Iterator[str]:
        """*Primitive.* Hashes of every stored result."""
        raise NotImplementedError

    # --- primitives: locks, logs, scratch -----------------------------------------------------------------------

    def lock(self, key: str, holder: LockHolder) -> contextlib.AbstractContextManager[None]:
        """*Primitive.* Hold the exclusive lock ``key`` for the ``with`` block.

        Fails at once with `misen.errors.TaskLockedError` naming the holder if another live process holds it;
        a lock whose holder died is taken over.
        """
        raise NotImplementedError

    def lock_holder(self, key: str) -> LockHolder | None:
        """*Primitive.* The live holder of lock ``key``, or ``None``. Never writes."""
        raise NotImplementedError

    def log_path(self, kind: str, key: str, attempt: str) -> Path:
        """*Primitive.* A local file to write the log of one attempt (``kind`` is ``"task"`` or ``"unit"``)."""
        raise NotImplementedError

    def publish_log(self, kind: str, key: str, attempt: str, path: Path, *, final: bool) -> None:
        """Make a log written at `log_path` visible to other machines (no-op for local workspaces)."""

    def list_logs(self, kind: str, key: str) -> list[LogEntry]:
        """*Primitive.* The logs of ``key``, newest first."""
        raise NotImplementedError

    def work_dir(self, key: str, *, persistent: bool = True) -> Path:
        """*Primitive.* The scratch directory of task ``key`` (created). Persistent ones survive runs."""
        raise NotImplementedError

    def sync_work_dir(self, key: str, path: Path) -> None:
        """Copy a work directory's contents where other machines see them (no-op for local workspaces)."""

    def close(self) -> None:
        """Release connections and background threads."""

    def discard_local_copy(self, result_hash: str) -> bool:
        """Forget a local copy of a remote result that failed its checks, so the next `open_result` fetches it
        again from the source; return whether there was such a copy (then misen tries the load once more).
        Workspaces without local copies of remote results keep the default (``False``)."""
        return False


def resolve_workspace(workspace: Workspace | str | None = None, session: Session | None = None) -> Workspace:
    """A `Workspace` from an instance, a type name (``"disk"``), or the configuration (``None``); opened once
    per session."""
    if isinstance(workspace, Workspace):
        return workspace
    if workspace is not None and not isinstance(workspace, str):
        raise MisenError(f"workspace= must be a Workspace or a type name, got {type(workspace).__name__}")
    session = session or current_session()
    cls, ws_settings, _ = session.backend("workspace", workspace)
    return session.open_workspace({"type": cls.PLUGIN_NAME, "settings": unstructure_settings(ws_settings)})
