"""Snapshots: a frozen, content-addressed copy of the project's code that worker processes import from.

Taken before dispatching to other processes, so a researcher can keep editing while queued work stays pinned
to the code it was submitted with. An unchanged tree maps to the same snapshot id and is reused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from misen.errors import ConfigError, MisenError
from misen.gitignore import warn_if_env_local_tracked

__all__ = ["SNAPSHOT_FILES", "load_env_files", "take_snapshot"]

#: Files at the project root that go into every snapshot when present.
SNAPSHOT_FILES = ("pyproject.toml", "uv.lock", "pixi.lock", "pixi.toml", ".env", ".env.local", ".misen.toml")
_SKIP_DIRS = frozenset({"__pycache__", "node_modules", "build", "dist", "site", "docs", "tests", "benchmarks"})
_MAX_FILE = 8 * 1024 * 1024


def _source_files(root: Path) -> list[Path]:
    """The project's own source files: ``src/`` when it exists, else top-level packages and modules."""
    files: list[Path] = []
    bases: list[Path] = []
    if (root / "src").is_dir():
        bases.append(root / "src")
    else:
        for entry in sorted(root.iterdir()):
            if entry.name.startswith(".") or entry.name in _SKIP_DIRS:
                continue
            if entry.is_dir() and (entry / "__init__.py").exists():
                bases.append(entry)
            elif entry.is_file() and entry.suffix == ".py":
                files.append(entry)
    for base in bases:
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(dirpath) / name
                if path.is_file() and path.stat().st_size <= _MAX_FILE:
                    files.append(path)
    for name in SNAPSHOT_FILES:
        if (root / name).is_file():
            files.append(root / name)
    return files


def take_snapshot(root: Path, dest: Path) -> Path:
    """Copy the project at ``root`` into ``dest/<id>`` (content addressed) and return that directory."""
    files = _source_files(root)
    h = hashlib.blake2b(digest_size=12)
    contents: list[tuple[str, bytes]] = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        data = path.read_bytes()
        contents.append((rel, data))
        h.update(rel.encode() + b"\0" + hashlib.blake2b(data, digest_size=16).digest())
    snap_id = h.hexdigest()
    target = dest / snap_id
    if (target / ".complete").exists():
        return target
    try:
        return _publish(contents, snap_id, root, dest)
    except OSError as exc:
        why = (exc.strerror or str(exc)).lower()
        raise MisenError(
            f"cannot write the code snapshot to {exc.filename or dest}: {why}; free some space or make it writable "
            "(snapshots go to the workspace's snapshots/ folder unless the executor names another place)"
        ) from None


def _publish(contents: list[tuple[str, bytes]], snap_id: str, root: Path, dest: Path) -> Path:
    target = dest / snap_id
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{snap_id}-", dir=dest))
    try:
        for rel, data in contents:
            out = staging / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        for env_file in (staging / ".env", staging / ".env.local"):  # environment values: owner only
            if env_file.exists():
                env_file.chmod(0o600)
        (staging / ".complete").write_text(str(root))
        try:
            os.rename(staging, target)
        except OSError:
            # Another process published the same snapshot first; theirs is identical.
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _parse_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        if "=" not in line:
            raise ConfigError(f"{path}:{lineno}: expected NAME=value, got {raw!r}")
        key, value = line.split("=", 1)
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def load_env_files(root: Path) -> dict[str, str]:
    """``.env`` then ``.env.local`` (local wins); ``.env.local`` is made private (0600) in place."""
    env: dict[str, str] = {}
    for name in (".env", ".env.local"):
        path = root / name
        if path.is_file():
            if name == ".env.local" and (path.stat().st_mode & 0o077):
                try:
                    path.chmod(0o600)
                except OSError:
                    pass
            env.update(_parse_env(path))
            if name == ".env.local":
                warn_if_env_local_tracked(root)
    return env
