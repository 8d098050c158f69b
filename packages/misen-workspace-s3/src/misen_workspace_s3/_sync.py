"""Local files mirrored to the store: task logs uploaded periodically by a background thread while a task
runs (and completely at the end), and WORK_DIR directories downloaded at start and uploaded on sync."""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from misen_workspace_s3._fs import Remote

__all__ = ["Uploader", "WorkDirMirror", "entry_mtime"]


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def entry_mtime(entry: dict[str, Any]) -> float:
    """Modification time (epoch seconds) of a listing entry, whatever the back end calls it."""
    for name in ("LastModified", "mtime", "updated", "created"):
        value = entry.get(name)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return 0.0


class Uploader:
    """Uploads watched log files every ``interval`` seconds when they changed, from one daemon thread."""

    def __init__(self, remote: Remote, interval: float) -> None:
        self.remote = remote
        self.interval = interval
        self._watched: dict[Path, str] = {}
        self._sent: dict[Path, tuple[int, int] | None] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = False

    def watch(self, local: Path, rel: str) -> None:
        with self._lock:
            self._watched[local] = rel
            if self.interval > 0 and (self._thread is None or not self._thread.is_alive()):
                if self._thread is None:  # logs still open at exit are uploaded whole
                    atexit.register(self.close)
                self._stop.clear()
                self._thread = threading.Thread(target=self._loop, name="misen-s3-log-upload", daemon=True)
                self._thread.start()

    def publish(self, local: Path, rel: str, *, final: bool) -> None:
        """Upload ``local`` now if it changed since the last upload; ``final`` also stops watching it.

        A failure only warns (the task's result does not depend on its log) and keeps the log watched, so that
        the periodic uploader and `close` try again.
        """
        with self._lock:
            self._watched[local] = rel
        try:
            self._upload(local, rel, force=final)
        except Exception as exc:
            print(f"misen: upload of log {local} to {self.remote.where(rel)} failed: {exc}", file=sys.stderr)
            return
        if final:
            with self._lock:
                self._watched.pop(local, None)

    def _upload(self, local: Path, rel: str, *, force: bool = False) -> None:
        stamp = _stamp(local)
        if stamp is None or (not force and self._sent.get(local) == stamp):
            return
        data = local.read_bytes()
        self.remote.write(rel, data)  # the whole log each time: one atomic PUT, never a torn object
        self._sent[local] = stamp

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                items = list(self._watched.items())
            for local, rel in items:
                try:
                    self._upload(local, rel)
                except Exception as exc:  # the final upload reports failures; a periodic one only warns once
                    if not self._warned:
                        self._warned = True
                        print(f"misen: periodic upload of log {local} failed: {exc}", file=sys.stderr)

    def close(self) -> None:
        """Stop the thread and upload every watched log a last time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            items = list(self._watched.items())
            self._watched.clear()
        for local, rel in items:
            try:
                self._upload(local, rel, force=True)
            except Exception as exc:
                print(f"misen: last upload of log {local} failed: {exc}", file=sys.stderr)


class WorkDirMirror:
    """A local directory mirrored from/to ``work/<key>/`` in the store.

    `push` uploads changed files, deletes what was deleted here, and then writes ``work/<key>.index.json``
    (name → size and local modification time at upload). `pull` downloads a file when it is missing here or the
    local copy is older than the uploaded one, so a task resumed on another machine finds its checkpoints, and
    one resumed on the same machine keeps its newer, not yet uploaded files.
    """

    def __init__(self, remote: Remote, rel: str, local: Path) -> None:
        self.remote = remote
        self.rel = rel
        self.index_rel = f"{rel}.index.json"
        self.local = local
        #: (size, mtime_ns) of each file as last downloaded or uploaded: what sync can skip.
        self._known: dict[str, tuple[int, int] | None] = {}

    def pull(self) -> int:
        """Download what the store has and the local copy lacks or holds older; the number of files fetched."""
        self.local.mkdir(parents=True, exist_ok=True)
        raw = self.remote.read(self.index_rel)
        index: dict[str, list[int]] = {}
        if raw is not None:
            try:
                index = {str(k): [int(v[0]), int(v[1])] for k, v in json.loads(raw).get("files", {}).items()}
            except (ValueError, TypeError, AttributeError, IndexError):
                index = {}
        names = {e["name"][len(self.rel) + 1 :] for e in self.remote.find(self.rel)}
        count = 0
        for name in sorted(names):
            if not name or ".." in name.split("/") or name.startswith("/"):
                continue
            target = self.local / name
            stamp = _stamp(target)
            uploaded = index.get(name)
            if stamp is not None and (uploaded is None or stamp[1] >= uploaded[1]):
                # what the store holds: equal to the local stamp only if this very version was uploaded
                self._known[name] = (uploaded[0], uploaded[1]) if uploaded is not None else None
                continue  # here already, and not older than the uploaded copy
            tmp = target.with_name(f".{target.name}.misen-download")
            self.remote.get_file(f"{self.rel}/{name}", tmp)
            if uploaded is not None:
                os.utime(tmp, ns=(uploaded[1], uploaded[1]))
            os.replace(tmp, target)
            self._known[name] = _stamp(target)
            count += 1
        return count

    def push(self) -> int:
        """Upload new and changed files, delete from the store what was deleted here; files uploaded."""
        present: dict[str, tuple[int, int]] = {}
        if self.local.is_dir():
            for path in self.local.rglob("*"):
                stamp = _stamp(path)
                if path.is_file() and stamp is not None and not path.name.endswith(".misen-download"):
                    present[path.relative_to(self.local).as_posix()] = stamp
        count = 0
        for name, stamp in sorted(present.items()):
            if self._known.get(name) != stamp:
                self.remote.put_file(self.local / name, f"{self.rel}/{name}")
                self._known[name] = stamp
                count += 1
        gone = [n for n in self._known if n not in present]
        for name in gone:
            self.remote.delete(f"{self.rel}/{name}")
            del self._known[name]
        if count or gone or not self.remote.exists(self.index_rel):
            files = {name: list(stamp) for name, stamp in sorted(present.items())}
            self.remote.write(self.index_rel, json.dumps({"files": files}, sort_keys=True).encode())
        return count
