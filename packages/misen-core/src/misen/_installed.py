"""What is installed on ``sys.path``, read from folder listings rather than from every distribution's metadata.

Reading the metadata of every installed distribution (what `importlib.metadata` does to find entry points) cost
about a tenth of a second of every misen start in an environment of a few hundred distributions. A listing of each
``sys.path`` folder and a ``stat`` of each distribution's ``entry_points.txt`` cost a millisecond or two, and
change whenever a distribution is installed, removed, upgraded or has its entry points rewritten. So:

- `entry_points` answers the ``misen`` group from a per-user cache (``$XDG_CACHE_HOME/misen``, else
  ``~/.cache/misen``) kept under a digest of that listing, and asks `importlib.metadata` (and rewrites the cache)
  whenever the listing differs. The cache is trusted only when it belongs to this user and nobody else can
  write it or its folder, since it names the modules misen imports. ``MISEN_NO_PLUGIN_CACHE=1`` turns it off.
- `distribution_names` gives the names of the distribution folders, for the environment digest of a result's
  provenance.

Where the listing cannot tell (a zip archive or an egg on ``sys.path``, or an import hook that finds
distributions of its own) both return ``None`` and the caller asks `importlib.metadata`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import re
import stat
import sys
from typing import Any

__all__ = ["distribution_names", "entry_points", "load"]

_FORMAT = 1


#: Modules whose import hooks find distributions the way a listing does: in the folders on ``sys.path`` (the
#: standard library's, and the ``importlib_metadata`` backport's, which puts a finder on ``sys.meta_path``).
_PATH_FINDERS = frozenset(
    {"_frozen_importlib_external", "importlib._bootstrap_external", "importlib.metadata", "importlib_metadata"}
)


def _listable() -> bool:
    """Whether only the path finder knows of distributions here (no other import hook finds any of its own)."""
    for finder in sys.meta_path:
        if getattr(finder, "find_distributions", None) is None:
            continue
        if getattr(finder, "__module__", "") not in _PATH_FINDERS:
            return False
    return True


def _scan(path: tuple[str, ...]) -> tuple[tuple[str, str, int, int], ...] | None:
    """``(path entry, folder name, mtime_ns, size)`` of each ``*.dist-info``/``*.egg-info`` entry of each folder
    on ``path`` (mtime and size of its ``entry_points.txt``, ``-1`` where it has none), or ``None`` where a
    listing cannot tell what is installed."""
    if not _listable():
        return None
    rows: list[tuple[str, str, int, int]] = []
    for entry in path:
        where = entry or "."
        try:
            listing = os.scandir(where)
        except (FileNotFoundError, NotADirectoryError):
            if os.path.isfile(where):
                return None  # a zip archive on the path: its distributions are not in a listing
            continue
        except OSError:
            continue
        with listing:
            names = sorted(e.name for e in listing)
        for name in names:
            low = name.lower()
            if low.endswith(".egg"):
                return None
            if not low.endswith((".dist-info", ".egg-info")):
                continue
            try:
                st = os.stat(f"{where}/{name}/entry_points.txt")
                rows.append((entry, name, st.st_mtime_ns, st.st_size))
            except OSError:
                rows.append((entry, name, -1, -1))
    return tuple(rows)


def distribution_names() -> list[str] | None:
    """The names of the distribution folders on ``sys.path`` (``name-version.dist-info``), sorted; ``None`` where a
    listing cannot tell."""
    rows = _scan(tuple(sys.path))
    return None if rows is None else sorted(row[1] for row in rows)


def _cache_file() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    which = hashlib.blake2b(f"{sys.prefix}\0{sys.executable}".encode(), digest_size=8).hexdigest()
    return os.path.join(base, "misen", f"entry-points-{which}.json")


def _trusted(fd: int, folder: str) -> bool:
    """Whether the open cache file and its folder are this user's and writable by nobody else."""
    if not hasattr(os, "getuid"):
        return False
    uid = os.getuid()
    try:
        mine, there = os.fstat(fd), os.stat(folder)
    except OSError:
        return False
    for st in (mine, there):
        if st.st_uid != uid or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return False
    return stat.S_ISREG(mine.st_mode)


def _read_cache(path: str, key: str) -> list[tuple[str, str, str]] | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        if not _trusted(fd, os.path.dirname(path)):
            return None
        data = json.loads(os.read(fd, 1 << 20))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    if not isinstance(data, dict) or data.get("format") != _FORMAT or data.get("key") != key:
        return None
    points = data.get("points")
    if not isinstance(points, list) or not all(
        isinstance(p, list) and len(p) == 3 and all(isinstance(x, str) for x in p) for p in points
    ):
        return None
    return [(p[0], p[1], p[2]) for p in points]


def _write_cache(path: str, key: str, points: list[tuple[str, str, str]]) -> None:
    """Write the cache atomically (a file of this user's, in a folder only this user can write); never raises."""
    folder = os.path.dirname(path)
    tmp = f"{path}.{os.getpid()}.{os.urandom(3).hex()}.tmp"
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(
                fd, json.dumps({"format": _FORMAT, "key": key, "points": [list(p) for p in points]}).encode()
            )
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


def load(value: str) -> Any:
    """The object an entry point's ``value`` (``module`` or ``module:attr``, extras ignored) names, imported."""
    match = _VALUE.match(value)
    if match is None:
        raise ValueError(f"not an entry point value: {value!r}")
    obj = importlib.import_module(match.group("module"))
    for part in (match.group("attr") or "").split("."):
        if part:
            obj = getattr(obj, part)
    return obj


def _from_metadata(group: str) -> list[tuple[str, str, str]]:
    from importlib import metadata

    return [
        (ep.name, ep.value, getattr(getattr(ep, "dist", None), "name", None) or "?")
        for ep in metadata.entry_points(group=group)
    ]


def entry_points(group: str) -> list[tuple[str, str, str]]:
    """``(name, value, distribution)`` of each entry point of ``group``, in `importlib.metadata`'s order."""
    rows = _scan(tuple(sys.path)) if os.environ.get("MISEN_NO_PLUGIN_CACHE") != "1" else None
    if rows is None:
        return _from_metadata(group)
    key = hashlib.blake2b(
        json.dumps([group, sys.version, sys.executable, rows]).encode(), digest_size=16
    ).hexdigest()
    path = _cache_file()
    points = _read_cache(path, key)
    if points is None:
        points = _from_metadata(group)
        _write_cache(path, key, points)
    return points
