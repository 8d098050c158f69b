"""A task attempt's log, and where to find the logs of a task.

An attempt's log is kept in memory while the task runs (`TaskLog`) and written to the workspace's log file
(`misen.Workspace.log_path`) only when it matters: the task failed or was interrupted, it has run for a while
(one daemon thread per process writes out the logs older than their threshold, so a long or stuck task's log is
on disk while it runs), or it printed more than `INLINE_LIMIT` characters. The log of a quick task that succeeded
goes into its provenance instead (``log_text``, with ``log`` set to ``None``), inside the record the run writes
anyway: no file, no folder. `task_logs` finds both kinds.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from misen import cache
from misen.workspace import LogEntry, process_id

if TYPE_CHECKING:
    from misen.tasks import Task
    from misen.workspace import Workspace

__all__ = [
    "INLINE_LIMIT",
    "SPOOL_VARIABLE",
    "Spool",
    "SpoolLog",
    "TaskLog",
    "inline_log",
    "process_spool",
    "task_logs",
]

#: A log that grows past this many characters is written to its file (a record holds only small logs).
INLINE_LIMIT = 64 * 1024


class TaskLog:
    """One attempt's log: in memory until it is written to its file (`promote`), then in the file.

    ``open_file`` returns the path of the attempt's log file (`misen.Workspace.log_path`, which may create its
    folder): it is called only when the log goes to disk. ``after``: seconds after which the log of a task still
    running goes to disk. Safe to write from several threads; a write after the log went to disk goes to the file.
    Use it as a context manager around the attempt: while inside, the log goes to disk once ``after`` seconds have
    passed.
    """

    def __init__(self, open_file: Callable[[], Path], *, after: float, limit: int = INLINE_LIMIT) -> None:
        self._open_file = open_file
        self._after = after
        self._limit = limit
        self._lock = threading.Lock()
        self._parts: list[str] = []
        self._size = 0
        self._file: TextIO | None = None
        self._settled = False
        self._refused = False
        self._watched = False
        self.path: Path | None = None
        self.deadline = 0.0

    # --- the file-like side the task writes to ---------------------------------------------------------------

    def write(self, text: str) -> int:
        with self._lock:
            if self._file is not None:
                return self._file.write(text)
            self._parts.append(text)
            self._size += len(text)
            if self._size > self._limit and not self._settled and not self._refused:
                self._to_disk_quietly()
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        """The file's descriptor (``"fd"`` capture points descriptors 1 and 2 at it): `promote` first."""
        if self._file is None:
            raise ValueError("the log is in memory: promote it to its file first")
        return self._file.fileno()

    # --- the attempt's side ----------------------------------------------------------------------------------

    def __enter__(self) -> TaskLog:
        if self._file is None:
            self.deadline = time.monotonic() + self._after
            self._watched = True
            _promoter().watch(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._unwatch()
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def promote(self) -> Path:
        """Write the log to its file now and keep writing there; return the file's path. A storage error raises
        (`misen.errors.MisenError` or `OSError`)."""
        with self._lock:
            self._to_disk()
            assert self.path is not None
            return self.path

    def on_disk(self) -> bool:
        """Whether the log has gone to its file."""
        return self.path is not None

    def settle(self, tail: str = "") -> dict[str, Any]:
        """The provenance fields of an attempt that succeeded: ``{"log": path}`` when the log is on disk, else
        ``{"log": None, "log_text": text + tail}``. From now on the log stays where it is unless `keep` asks for a
        file (a failure after this point)."""
        self._unwatch()
        with self._lock:
            self._settled = True
            if self.path is not None:
                return {"log": str(self.path)}
            return {"log": None, "log_text": self._clipped("".join(self._parts) + tail)}

    def keep(self, extra: str = "") -> str | None:
        """Make sure the log is in its file, with ``extra`` appended (a traceback), also after the attempt's block
        ended; return the file's path, or ``None`` when the workspace refused the file."""
        with self._lock:
            try:
                if self.path is None:
                    self._to_disk()
                elif self._file is None:
                    self._file = open(self.path, "a", encoding="utf-8", errors="replace")
                assert self._file is not None
                if extra:
                    self._file.write(extra)
                self._file.close()
            except Exception:
                return str(self.path) if self.path is not None else None
            finally:
                self._file = None
            return str(self.path)

    def _to_disk(self) -> None:
        """Open the file and write what was kept in memory (the lock held)."""
        if self.path is not None:
            return
        path = self._open_file()
        f = open(path, "a", buffering=1, encoding="utf-8", errors="replace")
        try:
            f.write("".join(self._parts))
            f.flush()
        except BaseException:
            f.close()
            raise
        self._parts.clear()
        self._file, self.path = f, path

    def _clipped(self, text: str) -> str:
        """A log kept in the record: whole, or (only when its file was refused) its end."""
        if len(text) <= self._limit:
            return text
        note = "[misen] (the log file could not be written: only the end of the log is kept)\n"
        return note + text[-self._limit :]

    def _to_disk_quietly(self) -> None:
        try:
            self._to_disk()
        except Exception:
            self._refused = True  # a full or read-only disk: the log stays in memory

    def _unwatch(self) -> None:
        if self._watched:
            self._watched = False
            _promoter().forget(self)

    def _promote_if_running(self) -> None:
        with self._lock:
            if not self._settled and not self._refused:
                self._to_disk_quietly()


#: The environment variable that gives a worker process its spool file (`Spool`), set by the executor that
#: starts it; without it, ``"fd"`` capture writes each attempt's log file from the start.
SPOOL_VARIABLE = "MISEN_TASK_LOG_SPOOL"


class Spool:
    """The file a process that runs one unit at a time (``"fd"`` capture) points descriptors 1 and 2 at for each
    attempt, instead of a new log file per attempt.

    Its content is the current attempt's log. When the log matters (`SpoolLog` is promoted) the file gets the
    attempt's log name by a hard link, and the next attempt starts a new spool; otherwise the next attempt
    empties it. The executor that named it (`SPOOL_VARIABLE`) links it to the attempt's log name itself when the
    process dies in the middle of an attempt, and removes it at the end of the run.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None
        self._fresh = True

    def begin(self) -> int:
        """The spool's descriptor, emptied for a new attempt (a new file after one that became a log)."""
        if self.fd is not None and not self._fresh:
            os.close(self.fd)
            self.fd = None
        if self.fd is None:
            # Appending: whatever writes through 1 and 2 (subprocesses too) lands at the end, never over a line.
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o666)
            self._fresh = True
        os.ftruncate(self.fd, 0)
        return self.fd

    def became(self, path: Path) -> None:
        """The spool's file is now the log at ``path`` (a hard link): the next attempt needs a new spool."""
        os.link(self.path, path)
        self._fresh = False
        with contextlib.suppress(OSError):
            os.unlink(self.path)


@functools.cache
def _spool_of(path: str, pid: int) -> Spool:
    return Spool(path)


def process_spool() -> Spool | None:
    """This process's spool (`SPOOL_VARIABLE`), or ``None``."""
    path = os.environ.get(SPOOL_VARIABLE)
    return _spool_of(path, os.getpid()) if path else None


class SpoolLog(TaskLog):
    """An attempt's log for ``"fd"`` capture, written to the process's `Spool`: what the task and its
    subprocesses print goes there through descriptors 1 and 2; the log becomes a file only when it matters (as for
    `TaskLog`: a failure, a long run, a big log), by a hard link, and a quick attempt's text goes into its record.
    A crash of the process leaves the text in the spool, where the executor finds it."""

    def __init__(
        self, open_file: Callable[[], Path], spool: Spool, *, after: float, limit: int = INLINE_LIMIT
    ) -> None:
        super().__init__(open_file, after=after, limit=limit)
        self._spool = spool
        self._fd = spool.begin()
        self._copied = False  # the log file is a copy of the spool (no hard links), refreshed at the end

    def write(self, text: str) -> int:
        os.write(self._fd, text.encode("utf-8", "replace"))
        return len(text)

    def flush(self) -> None:
        """Nothing to flush: every write goes straight to the file."""

    def fileno(self) -> int:
        return self._fd

    def __exit__(self, *exc: object) -> None:
        self._unwatch()

    def _to_disk(self) -> None:
        if self.path is not None:
            return
        path = self._open_file()
        try:
            self._spool.became(path)
        except OSError:
            # No hard links here (or another file system): a copy of what is there now; later writes through
            # the descriptors still go to the spool, so the copy is refreshed when the attempt ends (`keep`).
            self._copy_to(path)
            self._copied = True
        self.path = path

    def _copy_to(self, path: Path) -> None:
        size = os.fstat(self._fd).st_size
        with open(path, "wb") as f:
            f.write(os.pread(self._fd, size, 0))

    def settle(self, tail: str = "") -> dict[str, Any]:
        self._unwatch()
        with self._lock:
            self._settled = True
            size = os.fstat(self._fd).st_size
            if self.path is None and size + len(tail) > self._limit and not self._refused:
                self._to_disk_quietly()
            if self.path is not None:
                if self._copied:
                    self._copy_to(self.path)
                return {"log": str(self.path)}
            text = os.pread(self._fd, size, 0).decode("utf-8", "replace")
            return {"log": None, "log_text": self._clipped(text + tail)}

    def keep(self, extra: str = "") -> str | None:
        with self._lock:
            try:
                if extra:
                    os.write(self._fd, extra.encode("utf-8", "replace"))
                if self.path is None:
                    self._to_disk()
                elif self._copied:
                    self._copy_to(self.path)
            except Exception:
                return str(self.path) if self.path is not None else None
            return str(self.path)


class _Promoter:
    """The daemon thread of this process that writes out the logs of tasks that have run past their threshold."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._pid = process_id()
        # A plain lock (taken twice for every task: a condition's costs more) and a sleep: nothing wakes the thread
        # early, since it looks at least once a tick and a log's deadline is at least one tick away.
        self._lock = threading.Lock()
        self._logs: dict[int, TaskLog] = {}
        self._tick = 1.0
        self._thread: threading.Thread | None = None

    def watch(self, log: TaskLog) -> None:
        if process_id() != self._pid:  # a forked child: the parent's thread and lock state are not ours
            self._reset()
        with self._lock:
            self._logs[id(log)] = log
            if log._after < self._tick:
                self._tick = max(log._after, 0.01)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="misen-task-logs", daemon=True)
                self._thread.start()

    def forget(self, log: TaskLog) -> None:
        if process_id() != self._pid:
            self._reset()
        with self._lock:
            self._logs.pop(id(log), None)

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    now = time.monotonic()
                    due = [log for log in self._logs.values() if log.deadline <= now]
                    for log in due:
                        del self._logs[id(log)]
                    soonest = min((log.deadline for log in self._logs.values()), default=now + self._tick)
                for log in due:
                    log._promote_if_running()
                if not due:
                    time.sleep(min(soonest - now, self._tick))
        finally:
            with self._lock:  # the next watch starts another (only an unexpected error ends the loop)
                self._thread = None


@functools.cache
def _promoter() -> _Promoter:
    return _Promoter()


def inline_log(ws: Workspace, task: Task[Any]) -> LogEntry | None:
    """The log kept in the task's current record (a quick attempt that succeeded), if any."""
    prov = (cache.provenance(ws, task) if task.cacheable else None) or {}
    text = prov.get("log_text")
    if not isinstance(text, str):
        return None
    start = float(prov.get("start") or 0.0)
    end = start + float(prov.get("duration") or 0.0)
    attempt = time.strftime("%Y%m%d-%H%M%S", time.localtime(start)) + f"-{prov.get('pid', 0)}-record"
    return LogEntry(attempt, None, end, text=text)


def task_logs(ws: Workspace, task: Task[Any]) -> list[LogEntry]:
    """Every log of ``task``, newest first: the files the workspace lists (`misen.Workspace.list_logs`) and the
    log kept in its current record (`inline_log`; its ``path`` is ``None``, `misen.workspace.LogEntry.read`
    returns its text)."""
    entries = list(ws.list_logs("task", task.hash))
    inline = inline_log(ws, task)
    if inline is not None:
        entries.append(inline)
        entries.sort(key=lambda e: e.mtime, reverse=True)
    return entries
