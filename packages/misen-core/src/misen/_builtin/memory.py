"""The memory workspace: records in dicts, result files in a private temporary directory; gone at exit."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from misen.errors import TaskLockedError
from misen.hookspecs import hookimpl
from misen.workspace import LockHolder, LogEntry, Workspace, WorkspaceSettings

__all__ = ["MemoryWorkspace"]


@attrs.define
class MemorySettings(WorkspaceSettings):
    """A memory workspace has nothing to configure; each process has its own."""

    name: str = attrs.field(default="default", metadata={"help": "Separate memory workspaces by name."})


class MemoryWorkspace(Workspace):
    """A workspace that lives as long as the process (tests, notebooks, throwaway runs)."""

    PLUGIN_NAME = "memory"
    Settings = MemorySettings
    #: Results live in this process only: executors that start other processes cannot use it.
    SHARED_ACROSS_PROCESSES = False

    def __init__(self, settings: Any = None, **overrides: Any) -> None:
        super().__init__(settings, **overrides)
        self._root = Path(tempfile.mkdtemp(prefix="misen-memory-"))
        self._records: dict[str, dict[str, dict[str, Any]]] = {}
        self._locks: dict[str, LockHolder] = {}
        self._guard = threading.Lock()
        import atexit

        atexit.register(shutil.rmtree, self._root, True)

    def describe(self) -> str:
        return f"memory ({self.settings.name})"

    def local_root(self) -> Path:
        return self._root

    def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        rec = self._records.get(kind, {}).get(key)
        return dict(rec) if rec is not None else None

    def put_record(self, kind: str, key: str, value: dict[str, Any], *, durable: bool = True) -> None:
        with self._guard:
            self._records.setdefault(kind, {})[key] = dict(value)

    def delete_record(self, kind: str, key: str) -> None:
        with self._guard:
            self._records.get(kind, {}).pop(key, None)

    def iter_records(self, kind: str) -> Iterator[str]:
        yield from list(self._records.get(kind, {}))

    def _result(self, result_hash: str) -> Path:
        return self._root / "results" / result_hash

    def has_result(self, result_hash: str) -> bool:
        return (self._result(result_hash) / "manifest.json").exists()

    @contextlib.contextmanager
    def staging_dir(self) -> Iterator[Path]:
        (self._root / "tmp").mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(dir=self._root / "tmp"))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def commit_result(self, result_hash: str, staged: Path, *, durable: bool = True) -> None:
        target = self._result(result_hash)
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.rename(staged, target)

    def open_result(self, result_hash: str) -> Path | None:
        path = self._result(result_hash)
        return path if (path / "manifest.json").exists() else None

    def delete_result(self, result_hash: str) -> None:
        shutil.rmtree(self._result(result_hash), ignore_errors=True)

    def iter_results(self) -> Iterator[str]:
        base = self._root / "results"
        if base.is_dir():
            yield from (p.name for p in base.iterdir())

    @contextlib.contextmanager
    def lock(self, key: str, holder: LockHolder) -> Iterator[None]:
        with self._guard:
            current = self._locks.get(key)
            if current is not None:
                raise TaskLockedError(f"task {holder.task or key} is already running ({current.describe()})", current)
            self._locks[key] = holder
        try:
            yield
        finally:
            with self._guard:
                self._locks.pop(key, None)

    def lock_holder(self, key: str) -> LockHolder | None:
        return self._locks.get(key)

    def log_path(self, kind: str, key: str, attempt: str) -> Path:
        path = self._root / "logs" / kind / key / f"{attempt}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def list_logs(self, kind: str, key: str) -> list[LogEntry]:
        base = self._root / "logs" / kind / key
        if not base.is_dir():
            return []
        entries = [LogEntry(p.stem, p, p.stat().st_mtime) for p in base.glob("*.log")]
        return sorted(entries, key=lambda e: (e.mtime, e.attempt), reverse=True)

    def work_dir(self, key: str, *, persistent: bool = True) -> Path:
        if persistent:
            path = self._root / "work" / key
        else:
            path = self._root / "tmp" / f"work-{key}-{time.time_ns()}"
        path.mkdir(parents=True, exist_ok=True)
        return path


@hookimpl
def misen_add_workspaces() -> list[type[Workspace]]:
    return [MemoryWorkspace]
