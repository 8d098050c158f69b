"""What the report reads from files a workspace keeps locally: the end of a log, a result's size from its
manifest. Both are plain reads of small files, done once per task of a sweep, so they skip what they do not
need (text-mode decoding of a whole log, the checks of a result that is not loaded)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from misen.serializer import MANIFEST
from misen.tasklog import task_logs

if TYPE_CHECKING:
    from misen.tasks import Task
    from misen.workspace import Workspace

__all__ = ["IN_RECORD", "read_log", "result_size"]

#: What the report shows in place of a log file's path for a log kept in the task record.
IN_RECORD = "in the task record (the task ended quickly and wrote no log file)"


def _tail(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    cut = text[-limit:]
    newline = cut.find("\n")
    return (cut[newline + 1 :] if 0 <= newline < 200 else cut), True


def read_log(
    path: str | None, ws: Workspace, task: Task[Any], limit: int, *, inline: str | None = None
) -> dict[str, Any] | None:
    """The end of a task's log: ``inline`` (a quick task's log, kept in its provenance), else from ``path`` (its
    provenance names it), else the newest of the task's logs (`misen.tasklog.task_logs`)."""
    text = None
    if inline is not None:
        shown, cut = _tail(inline, limit)
        return {"path": IN_RECORD, "text": shown, "truncated": cut}
    if path:
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                size = os.fstat(fd).st_size
                start = max(0, size - limit - 1024)  # a little more than kept: _tail cuts at a line
                data = os.pread(fd, size - start, start)
            finally:
                os.close(fd)
        except OSError:
            text = None
        else:
            text = data.decode("utf-8", errors="replace")
            if "\r" in text:  # as text mode reads it: universal newlines
                text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text is None:
        entries = task_logs(ws, task)
        if not entries:
            return None
        path, text = entries[0].where, entries[0].read()
    shown, cut = _tail(text, limit)
    return {"path": path, "text": shown, "truncated": cut}


def result_size(directory: Any) -> int | None:
    """A stored result's size in bytes, from the manifest in its local directory (one raw read, no checks: the
    size is for display; a result that is loaded is checked in full)."""
    if directory is None:
        return None
    try:
        fd = os.open(os.path.join(directory, MANIFEST), os.O_RDONLY)
        try:
            chunks = [os.read(fd, 65536)]
            while len(chunks[-1]) == 65536:
                chunks.append(os.read(fd, 65536))
        finally:
            os.close(fd)
        return sum(int(f.get("size", 0)) for f in json.loads(b"".join(chunks))["files"].values())
    except Exception:
        return None
