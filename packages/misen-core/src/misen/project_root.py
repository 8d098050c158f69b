"""Where a project's root is, and why: the directory whose ``.misen.toml`` configures misen and against which a
relative workspace directory (``.misen``) is resolved.

The root is the nearest directory at or above the start holding ``.misen.toml`` or ``pyproject.toml``; when that
is a ``pyproject.toml`` of a member of a uv workspace (and no ``.misen.toml`` is next to it), the workspace's
root, where ``uv.lock`` and the ``.venv`` that uv uses are. An experiment's command line starts the search from
the file that defines the experiment (`root_of_module_file`), not from the current directory, so a run from a
sub-folder or with ``uv run --project ../my-project`` from elsewhere uses that project's workspace.

This module imports nothing from misen: `misen.settings` builds on it.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from pathlib import Path
from typing import Any

__all__ = ["PROJECT_FILE", "explain", "root_of_module_file", "search"]

PROJECT_FILE = ".misen.toml"


def search(here: Path) -> tuple[Path | None, str]:
    """``(root or None, why)`` for a search starting at the directory ``here``."""
    here = here.resolve()
    for candidate in (here, *here.parents):
        if (candidate / PROJECT_FILE).is_file():
            return candidate, f"the nearest directory at or above {here} with {PROJECT_FILE}"
        if (candidate / "pyproject.toml").is_file():
            workspace = _uv_workspace_root(candidate)
            if workspace is not None:
                return workspace, (
                    f"the uv workspace that {candidate.name} (nearest pyproject.toml at or above {here}) belongs to"
                )
            return candidate, f"the nearest directory at or above {here} with pyproject.toml"
    return None, f"no {PROJECT_FILE} or pyproject.toml at or above {here}"


def _uv_workspace_root(member: Path) -> Path | None:
    """The root of the uv workspace whose members include ``member``, if any."""
    for parent in member.parents:
        data = _pyproject(parent / "pyproject.toml")
        if data is None:
            continue
        ws = data.get("tool", {}).get("uv", {}).get("workspace")
        if not isinstance(ws, dict):
            continue
        relative = member.relative_to(parent).as_posix()
        members = [str(m) for m in ws.get("members", []) if isinstance(m, str)]
        excluded = [str(m) for m in ws.get("exclude", []) if isinstance(m, str)]
        if any(fnmatch.fnmatch(relative, m) for m in members) and not any(
            fnmatch.fnmatch(relative, m) for m in excluded
        ):
            return parent
        return None  # the nearest workspace above does not include it
    return None


def _pyproject(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return None


def root_of_module_file(path: str | os.PathLike[str] | None) -> Path | None:
    """The project root of a module's source file, or ``None`` for installed code (``site-packages``)."""
    if not path:
        return None
    file = Path(path).resolve()
    if any(part in ("site-packages", "dist-packages") for part in file.parts):
        return None
    return search(file.parent)[0]


def explain(start: Path) -> str:
    """One line for ``misen config``: the root found from ``start``, and why it is the root."""
    root, why = search(start)
    if root is None:
        return f"project root: none, so the current directory {start} ({why})"
    return f"project root: {root} ({why})"
