"""Clean-up of what crashed processes leave behind: ``tmp/`` entries and half-written ``.*.tmp`` files."""

from __future__ import annotations

import contextlib
import glob
import os

from misen.workspace import writer_is_dead

from misen_workspace_disk._fs import names, remove_tree, tree_size

__all__ = ["sweep"]


def sweep(tmp: str, temp_file_globs: list[str], limit: float, *, dry_run: bool) -> list[tuple[str, int]]:
    """Remove leftovers of crashed processes: entries of ``tmp`` whose writer is gone, and ``.*.tmp`` files
    older than ``limit`` in the directories matching ``temp_file_globs`` (glob patterns, already escaped).

    ``tmp`` entries are named ``<what>-<pid>-<random>-<host>``. One made on this host by a process that is gone
    is removed at once, whatever its age; one of a live process is kept; one made on another host (whose
    processes cannot be seen from here) goes once it was last changed before ``limit``.
    """
    removed: list[tuple[str, int]] = []
    for name in names(tmp):
        path = f"{tmp}/{name}"
        try:
            mtime = os.lstat(path).st_mtime
        except OSError:
            continue
        dead = writer_is_dead(name, mtime)
        if dead is False or (dead is None and mtime > limit):
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
