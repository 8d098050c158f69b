"""`DiskWorkspace`: misen's default workspace, a directory (``.misen/``) on a local or shared file system.

It implements the storage primitives of `misen.workspace.Workspace`; the caching rules come from the base class.
The layout is described in this package's README and in `DiskWorkspace`'s docstring.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs
from misen.errors import MisenError
from misen.workspace import LockHolder, LogEntry, Workspace, WorkspaceSettings

from misen_workspace_disk import _fs
from misen_workspace_disk._fs import (
    HOST,
    WorkspaceStorageError,
    atomic_write_bytes,
    atomic_write_linked,
    check_name,
    dump_json,
    fsync_dir,
    is_name,
    names,
    read_bytes,
    read_json,
    remove_tree,
    storage_error,
    subdirs,
    sync_filesystem,
)
from misen_workspace_disk._locks import hold_lock, probe_holder
from misen_workspace_disk._sweep import sweep

_json_loads = json.loads

__all__ = ["DiskWorkspace", "DiskWorkspaceSettings", "WorkspaceStorageError"]

#: Subdirectories of the workspace root.
AREAS = ("records", "results", "tmp", "locks", "logs", "work", "snapshots")


def _absolute(value: str | os.PathLike[str]) -> str:
    if not os.fspath(value).strip():
        raise ValueError("directory is empty: name the workspace's directory (the default is .misen in the project root)")
    path = Path(os.path.expanduser(os.fspath(value)))
    if not path.is_absolute():
        try:
            from misen.session import project_root

            base = project_root()
        except ImportError:
            base = Path.cwd()
        path = base / path
    path_text = os.path.normpath(str(path))
    if os.path.exists(path_text) and not os.path.isdir(path_text):
        raise ValueError(f"directory {path_text} is a file, not a directory: name a directory for the workspace")
    return path_text


def _non_negative(inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be zero or more seconds, got {value!r}")


@attrs.define
class DiskWorkspaceSettings(WorkspaceSettings):
    """The ``[workspace]`` section when ``type = "disk"``."""

    directory: str = attrs.field(
        default=".misen",
        converter=_absolute,
        metadata={
            "help": "Where the workspace lives. A relative path is taken from the project root (the directory "
            "holding .misen.toml or pyproject.toml) and stored absolute, so workers started elsewhere find it. "
            "It may be on a shared file system (NFS, Lustre with flock) for multi-machine runs."
        },
    )
    lock_timeout: float = attrs.field(
        default=0.0,
        validator=_non_negative,
        metadata={
            "help": "Seconds to wait for a task lock held by another run before failing with an error naming the "
            "holder. 0 fails at once, as misen promises for duplicate runs."
        },
    )
    fsync: bool = attrs.field(
        default=True,
        metadata={
            "help": "Make results durable: results of tasks that ran for a second or more are fsynced before "
            "they are published, quicker ones are flushed together at the end of the run. Turn off only for "
            "throw-away workspaces on slow file systems."
        },
    )
    stale_tmp_after: float = attrs.field(
        default=86400.0,
        validator=_non_negative,
        metadata={
            "help": "Seconds after which leftovers in tmp/ (staging and scratch directories of processes that "
            "crashed) made on other hosts are removed. Those of a process of this host that is gone are removed "
            "at once, those of a live one never."
        },
    )


#: Records shard by the first character of their key: a fresh workspace makes 16 folders per kind instead of 256,
#: and on a typical disk a folder costs as much as several small files. Workspaces written before keep their
#: two-character shards, which are still read (and replaced by the narrow name when rewritten).
_SHARD = 1
_CHECKED_KINDS = frozenset({"task", "key", "resolved", "result", "failure", "code"})


class DiskWorkspace(Workspace):
    """A workspace in a directory. Everything is a plain file; nothing needs a server.

    Layout under ``directory``::

        records/<kind>/<key[:1]>/<key>.json     records (task, failure, ...): small JSON files (an earlier
                                                version's records/<kind>/<key[:2]>/ are still read)
        results/<hash[:2]>/<hash>/              results: a directory with manifest.json, content addressed
        tmp/                                    staging and non-persistent scratch (same file system: rename)
        locks/<key[:1]>.lock                    byte-range locks of running tasks, a 512-byte slot per key
                                                naming the holder (see `._locks`)
        locks/<key[:2]>/<key>.lock              flock of a task whose slot another task holds (or of every
                                                task where byte-range locks are refused: locks/per-task)
        logs/<task|unit>/<key[:2]>/             <key>~<attempt>.log per attempt (attempt names sort by time)
        work/<key>/                             persistent WORK_DIR of a cacheable task
        snapshots/                              code snapshots (written by misen's core)

    Opening a workspace and every query (`get_record`, `has_result`, `lock_holder`, `list_logs`) write nothing;
    directories are made when something is first written.
    """

    PLUGIN_NAME: ClassVar[str] = "disk"
    Settings: ClassVar[type[Any]] = DiskWorkspaceSettings

    settings: DiskWorkspaceSettings

    def __init__(self, settings: Any = None, **overrides: Any) -> None:
        if settings is None and not overrides:
            settings = DiskWorkspaceSettings()
        super().__init__(settings, **overrides)
        self.root = self.settings.directory
        self._records = self.root + "/records"
        self._results = self.root + "/results"
        self._tmp = self.root + "/tmp"
        self._locks = self.root + "/locks"
        self._logs = self.root + "/logs"
        self._swept = False
        self._made: set[str] = set()  # directories known to exist (saves a mkdir per write)
        self._wide: dict[str, bool] = {}  # per kind: whether two-character shards of it exist

    def describe(self) -> str:
        return f"disk ({self.root})"

    def __repr__(self) -> str:
        return f"DiskWorkspace({self.root!r})"

    def local_root(self) -> Path:
        return Path(self.root)

    # --- the status fast path -----------------------------------------------------------------------------------

    # --- records ------------------------------------------------------------------------------------------------

    def _record_path(self, kind: str, key: str) -> str:
        if kind not in _CHECKED_KINDS:  # the kinds misen's core writes are known names: no need to check each time
            check_name(kind, "record kind")
        check_name(key, "record key")
        return f"{self._records}/{kind}/{key[:_SHARD]}/{key}.json"

    def _wide_path(self, kind: str, key: str) -> str | None:
        """Where a workspace written before narrow shards keeps this record (``None``: nowhere else)."""
        if len(key) < 2:
            return None  # its shard was one character wide before too
        if kind not in self._wide:
            # Read once per kind: whether this workspace has two-character shards of it (an earlier version).
            self._wide[kind] = any(len(os.path.basename(p)) == 2 for p in subdirs(f"{self._records}/{kind}"))
        return f"{self._records}/{kind}/{key[:2]}/{key}.json" if self._wide[kind] else None

    def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        found = read_json(self._record_path(kind, key))
        if found is None and (wide := self._wide_path(kind, key)) is not None:
            found = read_json(wide)
        return found

    def get_records(self, kind: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        check_name(kind, "record kind")
        base = f"{self._records}/{kind}/"
        if len(keys) > 1 and not os.path.isdir(base):
            return {}  # no record of this kind at all (a new workspace): one look instead of one per key
        width = _SHARD
        out: dict[str, dict[str, Any]] = {}
        loads = _json_loads
        for key in keys:
            check_name(key, "record key")
            path = f"{base}{key[:width]}/{key}.json"
            try:
                data = read_bytes(path)
                if data is None and (wide := self._wide_path(kind, key)) is not None:
                    data = read_bytes(wide)
            except OSError as exc:
                raise storage_error(exc, path, "read the record") from None
            if data is None:
                continue
            try:
                value = loads(data)
            except ValueError:
                continue
            if isinstance(value, dict):
                out[key] = value
        return out

    def put_record(self, kind: str, key: str, value: dict[str, Any], *, durable: bool = True) -> None:
        path = self._record_path(kind, key)
        atomic_write_bytes(
            path, dump_json(value), fsync=self.settings.fsync and durable, action=f"write the {kind} record"
        )
        self._drop_wide([(kind, key)])

    def put_records(self, names: list[tuple[str, str]], value: dict[str, Any], *, durable: bool = True) -> None:
        """One file for every name: written once, then hard-linked under the other names (one creation and a
        link per extra name, instead of a temporary file and a rename per name)."""
        paths = [self._record_path(kind, key) for kind, key in names]
        if not paths:
            return
        atomic_write_linked(
            paths, dump_json(value), fsync=self.settings.fsync and durable, action=f"write the {names[-1][0]} record"
        )
        self._drop_wide(names)

    def _drop_wide(self, names: list[tuple[str, str]]) -> None:
        """Remove what an earlier version wrote under the two-character shard of a name just written (so an older
        copy is never read back); nothing to do in workspaces that have none."""
        for kind, key in names:
            wide = self._wide_path(kind, key)
            if wide is not None:
                with contextlib.suppress(OSError):
                    os.unlink(wide)

    def sync(self) -> None:
        """Flush what was written without fsync (results of quick tasks) to stable storage."""
        if self.settings.fsync and os.path.isdir(self.root):
            sync_filesystem(self.root)

    def delete_record(self, kind: str, key: str) -> None:
        path = self._record_path(kind, key)
        for doomed in (path, self._wide_path(kind, key)):
            if doomed is None:
                continue
            try:
                os.unlink(doomed)
            except (FileNotFoundError, NotADirectoryError):
                pass
            except OSError as exc:
                raise storage_error(exc, doomed, f"delete the {kind} record") from None

    def iter_records(self, kind: str) -> Iterator[str]:
        check_name(kind, "record kind")
        seen: set[str] = set()
        for shard in subdirs(f"{self._records}/{kind}"):
            for name in names(shard):
                if name.endswith(".json") and not name.startswith(".") and name not in seen:
                    seen.add(name)
                    yield name[:-5]

    def record_kinds(self) -> list[str]:
        """The kinds that have at least a directory of records."""
        return sorted(os.path.basename(p) for p in subdirs(self._records))

    # --- results ------------------------------------------------------------------------------------------------

    def _result_path(self, result_hash: str) -> str:
        check_name(result_hash, "result hash")
        return f"{self._results}/{result_hash[:2]}/{result_hash}"

    def has_result(self, result_hash: str) -> bool:
        if not is_name(result_hash):
            return False
        return os.path.isdir(f"{self._results}/{result_hash[:2]}/{result_hash}")

    @contextlib.contextmanager
    def staging_dir(self) -> Iterator[Path]:
        """A fresh directory under ``tmp/`` (same file system as ``results/``, so committing is a rename)."""
        if not self._swept:
            self._swept = True
            # Only tmp/ (a few entries): the half-written record files are for gc, which lists every shard.
            self.sweep_tmp(temp_files=False)
        path = self._tmp_entry("stage")
        try:
            yield Path(path)
        except OSError as exc:
            # A serializer that hits a full disk or a permission error: one clear message, nothing left behind.
            raise storage_error(exc, path, "write the result") from None
        finally:
            remove_tree(path)

    def _tmp_entry(self, prefix: str) -> str:
        # pid and host in the name let a sweep tell a crashed process's leftovers from a live one's.
        path = f"{self._tmp}/{prefix}-{os.getpid()}-{_fs.token()}-{HOST}"
        try:
            try:
                os.mkdir(path)
            except FileNotFoundError:
                os.makedirs(self._tmp, exist_ok=True)
                os.mkdir(path)
        except OSError as exc:
            raise storage_error(exc, path, "create a temporary directory") from None
        return path

    def commit_result(self, result_hash: str, staged: Path, *, durable: bool = True) -> None:
        """Rename the staged directory into ``results/`` (no copy); an equal stored result wins."""
        target = self._result_path(result_hash)
        manifest = read_json(os.path.join(staged, "manifest.json"))
        if manifest is None or manifest.get("result_hash", result_hash) != result_hash:
            raise MisenError(f"disk workspace: {staged} is not a complete result with hash {result_hash}")
        parent = os.path.dirname(target)
        try:
            if not os.path.isdir(parent):
                os.makedirs(parent, exist_ok=True)
                if self.settings.fsync and durable:  # else the run's closing sync() flushes the new shard too
                    fsync_dir(self._results)
            try:
                os.rename(staged, target)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                # Staged on another file system (not by `staging_dir`): copy next to the target, then rename.
                near = self._tmp_entry("copy")
                try:
                    shutil.copytree(staged, f"{near}/r")
                    os.rename(f"{near}/r", target)
                finally:
                    remove_tree(near)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY) and os.path.isdir(target):
                remove_tree(staged)
                return
            raise storage_error(exc, target, "store the result") from None
        if self.settings.fsync and durable:
            fsync_dir(parent)

    def open_result(self, result_hash: str) -> Path | None:
        if not self.has_result(result_hash):
            return None
        return Path(self._result_path(result_hash))

    def delete_result(self, result_hash: str) -> None:
        """Remove a result: first renamed away (it vanishes at once, whole), then deleted."""
        target = self._result_path(result_hash)
        doomed = f"{self._tmp}/del-{os.getpid()}-{_fs.token()}-{HOST}"
        try:
            try:
                os.rename(target, doomed)
            except FileNotFoundError:
                if not os.path.isdir(target):
                    return
                os.makedirs(self._tmp, exist_ok=True)
                os.rename(target, doomed)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise storage_error(exc, target, "delete the result") from None
        remove_tree(doomed)

    def iter_results(self) -> Iterator[str]:
        for shard in subdirs(self._results):
            for name in names(shard):
                if is_name(name):
                    yield name

    def result_dir(self, result_hash: str) -> Path:
        """Where result ``result_hash`` lives (whether or not it is stored)."""
        return Path(self._result_path(result_hash))

    # --- locks ------------------------------------------------------------------------------------------------

    def lock(self, key: str, holder: LockHolder) -> contextlib.AbstractContextManager[None]:
        check_name(key, "lock key")
        return hold_lock(self._locks, key, holder, timeout=self.settings.lock_timeout, fsync=False)

    def lock_holder(self, key: str) -> LockHolder | None:
        check_name(key, "lock key")
        return probe_holder(self._locks, key)

    # --- logs ---------------------------------------------------------------------------------------------------

    def _log_shard(self, kind: str, key: str, width: int | None = None) -> str:
        check_name(kind, "log kind")
        check_name(key, "log key")
        # Work-unit logs (written by executors, one per unit) shard by one character, like a task record's other
        # names: a fresh workspace makes 16 folders for them, not 256. Earlier workspaces' shards are still read.
        if width is None:
            width = 1 if kind == "unit" else 2
        return f"{self._logs}/{kind}/{key[:width]}"

    def log_path(self, kind: str, key: str, attempt: str) -> Path:
        """``logs/<kind>/<key[:2]>/<key>~<attempt>.log`` (attempt names sort by time: the newest is the largest).

        One file per attempt and no folder per task: a cold task creates its log and nothing else here. ``~``
        cannot occur in a key or an attempt name, so the key of every log file is unambiguous.
        """
        check_name(attempt, "log attempt")
        shard = self._log_shard(kind, key)
        if shard not in self._made:
            try:
                os.makedirs(shard, exist_ok=True)
            except OSError as exc:
                raise storage_error(exc, shard, "create the log directory") from None
            self._made.add(shard)
        return Path(f"{shard}/{key}~{attempt}.log")

    def list_logs(self, kind: str, key: str) -> list[LogEntry]:
        shard = self._log_shard(kind, key)
        prefix = key + "~"
        entries: list[LogEntry] = []
        # This layout's files, then the per-task folder of workspaces written before it (``<key>/<attempt>.log``).
        places = [(shard, prefix), (f"{self._log_shard(kind, key, 2)}/{key}", "")]
        if kind == "unit":
            places.insert(1, (self._log_shard(kind, key, 2), prefix))  # two-character shards of earlier versions
        for directory, strip in places:
            try:
                it = os.scandir(directory)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise storage_error(exc, directory, "list the logs") from None
            with it:
                for entry in it:
                    name = entry.name
                    if not name.endswith(".log") or name.startswith(".") or not name.startswith(strip):
                        continue
                    with contextlib.suppress(OSError):
                        mtime = entry.stat().st_mtime
                        attempt = name[len(strip) : -4]
                        entries.append(LogEntry(attempt=attempt, path=Path(entry.path), mtime=mtime))
        entries.sort(key=lambda e: (e.mtime, e.attempt), reverse=True)
        return entries

    def latest_attempt(self, kind: str, key: str) -> str | None:
        """The newest attempt of ``key`` (listing only that task's own log directory)."""
        logs = self.list_logs(kind, key)
        return logs[0].attempt if logs else None

    # --- scratch ------------------------------------------------------------------------------------------------

    def work_dir(self, key: str, *, persistent: bool = True) -> Path:
        """``work/<key>/`` (kept across runs), or a fresh ``tmp/work-...`` directory when not persistent."""
        check_name(key, "work directory key")
        if not persistent:
            return Path(self._tmp_entry("work"))
        path = f"{self.root}/work/{key}"
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, path, "create the work directory") from None
        return Path(path)

    # --- housekeeping -------------------------------------------------------------------------------------------

    def sweep_tmp(
        self, *, older_than: float | None = None, dry_run: bool = False, temp_files: bool = True
    ) -> list[tuple[str, int]]:
        """Remove leftovers of crashed processes; returns ``(path, bytes)`` of what was (or would be) removed.

        An entry of ``tmp/`` made on this host goes at once when its process is gone, and never while it is
        alive; other hosts' entries go when older than ``older_than`` seconds (default: the ``stale_tmp_after``
        setting). With ``temp_files``, half-written record and lock-holder files (``.*.tmp``) older than that
        go too.
        """
        limit = time.time() - (self.settings.stale_tmp_after if older_than is None else older_than)
        patterns = (
            [glob.escape(self._records) + "/*/*", glob.escape(self._locks) + "/*"] if temp_files else []
        )
        return sweep(self._tmp, patterns, limit, dry_run=dry_run)
