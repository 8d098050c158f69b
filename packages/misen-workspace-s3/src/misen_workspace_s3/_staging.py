"""Leftovers of crashed writers in the local staging folder: removed at once when their writer is gone."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from misen.workspace import pid_alive, process_started_after

__all__ = ["sweep_dead_staging"]


def sweep_dead_staging(base: Path) -> list[Path]:
    """Remove ``stage-<pid>-<random>-<host>`` folders of ``base`` made on this host by processes that are gone
    (whatever their age); returns what was removed. Live writers' and other hosts' folders stay."""
    host = socket.gethostname()
    removed: list[Path] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        parts = entry.name.split("-", 3)
        if len(parts) != 4 or parts[0] != "stage" or parts[3] != host or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        try:
            mtime = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if pid != os.getpid() and (not pid_alive(pid) or process_started_after(pid, mtime)):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed
