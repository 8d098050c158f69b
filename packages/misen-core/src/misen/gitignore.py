"""Keeping misen's files out of git: the workspace directory ignores itself (``.gitignore`` of ``*``, as pytest's
cache does), and a ``.env.local`` that the project's git does not ignore is warned about, once per process."""

from __future__ import annotations

import functools
import shutil
import sys
from pathlib import Path

__all__ = ["ignore_directory", "warn_if_env_local_tracked"]

_IGNORE_ALL = "# Created by misen: this directory holds caches, results and logs, not sources.\n*\n"


def ignore_directory(path: Path | None) -> None:
    """Write ``path/.gitignore`` (``*``) when ``path`` exists and has none; errors are ignored."""
    if path is None:
        return
    target = Path(path) / ".gitignore"
    try:
        if not target.parent.is_dir() or target.exists():
            return
        with open(target, "x", encoding="utf-8") as f:
            f.write(_IGNORE_ALL)
    except OSError:
        return


def _in_git(root: Path) -> bool:
    return any((d / ".git").exists() for d in (root, *root.parents))


def warn_if_env_local_tracked(root: Path) -> bool:
    """Warn (once per process and project) when ``root/.env.local`` exists and git would commit it.

    Returns whether a warning was printed. Nothing is checked outside a git repository or without ``git``.
    """
    env_local = root / ".env.local"
    if not env_local.is_file() or not _in_git(root):
        return False
    git = shutil.which("git")
    if git is None:
        return False
    import subprocess  # here: only a project with a .env.local in git gets this far (every run asks)

    try:
        proc = subprocess.run(
            [git, "check-ignore", "-q", ".env.local"], cwd=root, capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    if proc.returncode != 1:  # 0: ignored; 128: not a repository or another error
        return False
    return _warn_once(str(env_local))


@functools.cache
def _warn_once(env_local: str) -> bool:
    print(
        f"misen: warning: {env_local} holds machine-local values and secrets but git does not ignore it; "
        "add the line .env.local to the project's .gitignore",
        file=sys.stderr,
        flush=True,
    )
    return True
