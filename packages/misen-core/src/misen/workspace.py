"""The `Workspace` interface: where results, records, locks, logs and scratch directories live.

A plugin implements a handful of storage primitives (records, result directories, locks, logs, work
directories); the caching rules built on them — identities, early cutoff, failure records, staleness — are
written once, here, so every workspace behaves alike.

Records are small JSON objects in named kinds:

``task``      task hash → ``{"resolved", "result", "name", "key", "time"}``: the task's current result.
``resolved``  resolved hash (identity with dependencies replaced by their result hashes) → ``{"result",
              "provenance"}``: lets an unchanged dependency result reuse its dependents (early cutoff).
``key``       code-agnostic key → ``{"task", "result", "fingerprint", "time"}``: the latest result of this call
              under any version of the code; a different ``task`` hash means the current result is stale.
``failure``   task hash → ``{"error", "log", "time", "status"}``: why the last attempt failed.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from misen.errors import NotCachedError, ResultCorruptedError

if TYPE_CHECKING:
    from misen.tasks import Task

__all__ = ["LockHolder", "LogEntry", "Workspace", "WorkspaceSettings", "hostname"]

_HOST: list[str] = []


def hostname() -> str:
    """This machine's name (asked once per process; a fork inherits the same machine)."""
    if not _HOST:
        _HOST.append(socket.gethostname())
    return _HOST[0]


@attrs.frozen
class LockHolder:
    """Who holds a task lock: enough to find the process and judge whether it is still alive."""

    host: str
    pid: int
    since: float
    run: str = ""
    task: str = ""

    @classmethod
    def current(cls, run: str = "", task: str = "") -> LockHolder:
        return cls(host=hostname(), pid=os.getpid(), since=time.time(), run=run, task=task)

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"host {self.host}, pid {self.pid}, since {started}"

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LockHolder:
        return cls(
            host=str(data.get("host", "?")),
            pid=int(data.get("pid", 0)),
            since=float(data.get("since", 0.0)),
            run=str(data.get("run", "")),
            task=str(data.get("task", "")),
        )


@attrs.frozen
class LogEntry:
    """One attempt's log file."""

    attempt: str
    path: Path
    mtime: float

    def read(self) -> str:
        try:
            return self.path.read_text(errors="replace")
        except OSError:
            return ""


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
            from misen.settings import structure_settings

            settings = structure_settings(self.Settings, overrides, where=f"{type(self).__name__}(...)")
        elif overrides:
            settings = attrs.evolve(settings, **overrides)
        self.settings = settings

    # --- identity of the workspace itself ---------------------------------------------------------------------

    def spec(self) -> dict[str, Any]:
        """``{"type", "settings"}``: enough for a worker process to open the same workspace."""
        from misen.settings import unstructure_settings

        return {"type": self.PLUGIN_NAME, "settings": unstructure_settings(self.settings)}

    @staticmethod
    def from_spec(spec: dict[str, Any]) -> Workspace:
        from misen.plugins import registry
        from misen.settings import structure_settings

        cls = registry().get("workspace", spec["type"])
        return cls(structure_settings(cls.Settings, spec.get("settings", {}), where="workspace spec"))  # type: ignore[no-any-return]

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

    # --- caching rules, built on the primitives ----------------------------------------------------------------

    def result_hash(self, task: Task[Any]) -> str | None:
        """The hash of the task's current result, or ``None`` if it is not cached."""
        if not task.cacheable:
            return None
        rec = self.get_record("task", task.hash)
        if rec is None:
            return None
        rh = rec.get("result")
        if isinstance(rh, str) and self.has_result(rh):
            return rh
        return None

    def is_cached(self, task: Task[Any]) -> bool:
        """Whether the task has a current result here."""
        return self.result_hash(task) is not None

    def status(self, task: Task[Any]) -> str:
        """``"done"``, ``"stale"`` (a result of an earlier code version exists), ``"failed"`` or ``"pending"``."""
        if self.is_cached(task):
            return "done"
        if self.get_record("failure", task.hash) is not None:
            return "failed"
        if task.cacheable and self.stale_record(task) is not None:
            return "stale"
        return "pending"

    def stale_record(self, task: Task[Any]) -> dict[str, Any] | None:
        """The ``key`` record of an earlier code version's result, when the task has no current result."""
        rec = self.get_record("key", task.key_hash)
        if rec is None or rec.get("task") == task.hash:
            return None
        result = rec.get("result")
        if isinstance(result, str) and self.has_result(result):
            return rec
        return None

    def load_hash(self, result_hash: str, *, serializer: Any = None) -> Any:
        from misen.serializer import load_result

        path = self.open_result(result_hash)
        if path is None:
            raise NotCachedError(f"result {result_hash} is not in workspace {self.describe()}")
        return load_result(path, serializer=serializer)

    def load(self, task: Task[Any]) -> Any:
        """The task's cached result; `NotCachedError` if there is none, and a corrupted one counts as none."""
        rh = self.result_hash(task)
        if rh is None:
            raise NotCachedError(f"{task!r} has no cached result in workspace {self.describe()}")
        try:
            return self.load_hash(rh, serializer=task.meta.serializer)
        except ResultCorruptedError as exc:
            raise NotCachedError(f"{task!r}: the stored result is damaged and counts as not cached ({exc})") from None

    def store(self, value: Any, *, serializer: Any = None, durable: bool = True) -> str:
        """Serialize and commit ``value``; returns its result hash. Equal results are stored once.

        ``durable=False`` (cheap results that are quick to recompute) leaves the final flush to `sync`.
        """
        from misen.serializer import save_result

        with self.staging_dir() as staged:
            result_hash, _ = save_result(value, staged, serializer, durable=durable)
            if self.has_result(result_hash) and not self._intact(result_hash):
                self.delete_result(result_hash)  # an equal result was stored before and has been damaged since
            if not self.has_result(result_hash):
                _call(self.commit_result, result_hash, staged, durable=durable)
        return result_hash

    def _intact(self, result_hash: str) -> bool:
        from misen.serializer import check_result

        path = self.open_result(result_hash)
        if path is None:
            return False
        try:
            check_result(path)
        except ResultCorruptedError:
            return False
        return True

    def link(
        self,
        task: Task[Any],
        *,
        resolved: str,
        result: str,
        provenance: dict[str, Any] | None = None,
        fingerprint: dict[str, Any] | None = None,
        durable: bool = True,
    ) -> None:
        """Record ``result`` as the task's current result (and as the result of its resolved identity)."""
        now = time.time()
        put = self.put_record
        if provenance is not None:
            _call(put, "resolved", resolved, {"result": result, "provenance": provenance}, durable=durable)
        task_record = {"resolved": resolved, "result": result, "name": task.name, "key": task.key_hash, "time": now}
        _call(put, "task", task.hash, task_record, durable=durable)
        key_record = {"task": task.hash, "result": result, "resolved": resolved, "fingerprint": fingerprint, "time": now}
        _call(put, "key", task.key_hash, key_record, durable=durable)
        self.delete_record("failure", task.hash)

    def resolved_result(self, resolved: str) -> str | None:
        rec = self.get_record("resolved", resolved)
        if rec is None:
            return None
        result = rec.get("result")
        # Reusing a result under a new identity is rare: worth checking that it is still intact.
        return result if isinstance(result, str) and self.has_result(result) and self._intact(result) else None

    def provenance(self, task: Task[Any]) -> dict[str, Any] | None:
        rec = self.get_record("task", task.hash)
        if rec is None:
            return None
        res = self.get_record("resolved", rec.get("resolved", ""))
        prov = dict((res or {}).get("provenance") or {})
        if rec.get("accepted_from"):
            prov["accepted_from"] = rec["accepted_from"]
        return prov or None

    def record_failure(self, task: Task[Any], *, status: str, error: str, log: str | None) -> None:
        record = {"status": status, "error": error, "log": log, "time": time.time(), "name": task.name}
        _call(self.put_record, "failure", task.hash, record, durable=False)

    def failure(self, task: Task[Any]) -> dict[str, Any] | None:
        return self.get_record("failure", task.hash)


_TAKES_DURABLE: dict[Any, bool] = {}


def _call(method: Any, *args: Any, durable: bool) -> Any:
    """Call a primitive, passing ``durable`` only to implementations that take it (plugins written before it)."""
    func = getattr(method, "__func__", method)
    takes = _TAKES_DURABLE.get(func)
    if takes is None:
        import inspect

        try:
            params = inspect.signature(func).parameters
            takes = "durable" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
        except (TypeError, ValueError):
            takes = False
        _TAKES_DURABLE[func] = takes
    return method(*args, durable=durable) if takes else method(*args)
