"""Clean-up of what crashed processes leave behind: ``tmp/`` entries and half-written ``.*.tmp`` files."""

from __future__ import annotations

import contextlib
import glob
import os

from misen_workspace_disk._fs import HOST, names, pid_alive, remove_tree, tree_size

__all__ = ["sweep"]


def sweep(tmp: str, temp_file_globs: list[str], limit: float, *, dry_run: bool) -> list[tuple[str, int]]:
    """Remove entries of ``tmp`` last changed before ``limit`` whose process is gone, and ``.*.tmp`` files
    older than ``limit`` in the directories matching ``temp_file_globs`` (glob patterns, already escaped).

    ``tmp`` entries are named ``<what>-<pid>-<random>-<host>``: a live pid on this host keeps its entry.
    """
    removed: list[tuple[str, int]] = []
    for name in names(tmp):
        path = f"{tmp}/{name}"
        try:
            mtime = os.lstat(path).st_mtime
        except OSError:
            continue
        if mtime > limit:
            continue
        parts = name.split("-", 3)
        if len(parts) == 4 and parts[3] == HOST and parts[1].isdigit() and pid_alive(int(parts[1])):
            continue
        removed.append((path, tree_size(path)[0]))
        if not dry_run:
            if os.path.isdir(path) and not os.path.islink(path):
                remove_tree(path)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)
    for pattern in temp_file_globs:
        for path in glob.glob(pattern + "/.*.tmp"):
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                if st.st_mtime <= limit:
                    removed.append((path, st.st_size))
                    if not dry_run:
                        os.unlink(path)
    return removed
