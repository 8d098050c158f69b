"""Leftovers of crashed writers in the local staging folder: removed at once when their writer is gone."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from misen.workspace import writer_is_dead

__all__ = ["sweep_dead_staging"]


def sweep_dead_staging(base: Path) -> list[Path]:
    """Remove ``stage-<pid>-<random>-<host>`` folders of ``base`` made on this host by processes that are gone
    (whatever their age); returns what was removed. Live writers' and other hosts' folders stay."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith("stage-"):
            continue
        try:
            mtime = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if writer_is_dead(entry.name, mtime):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed
