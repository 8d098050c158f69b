"""Building a conda channel and a ``pixi.lock`` locally, with no network: for tests, docs and demos.

`build_noarch_package` writes a ``noarch: generic`` ``.tar.bz2`` package (``info/index.json``,
``info/paths.json`` and the files), `index_channel` indexes a channel folder with ``rattler.index``, and
`write_lock` writes a ``pixi.lock`` (the version py-rattler writes, 7 at the time of writing) locking the
channel's packages for the given environments and platforms.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["build_noarch_package", "index_channel", "write_lock"]


def build_noarch_package(
    channel: Path,
    name: str,
    version: str,
    files: Mapping[str, bytes | str],
    *,
    build: str = "0",
    executables: Iterable[str] = (),
) -> Path:
    """Write ``channel/noarch/<name>-<version>-<build>.tar.bz2`` holding ``files`` (relative paths in the prefix).

    ``executables`` are made executable (mode 0755). ``etc/conda/env_vars.d/<name>.json`` among the files
    declares activation variables, as conda packages do.
    """
    executable = set(executables)
    data = {rel: (body.encode() if isinstance(body, str) else body) for rel, body in files.items()}
    paths = [
        {"_path": rel, "path_type": "hardlink", "sha256": hashlib.sha256(body).hexdigest(), "size_in_bytes": len(body)}
        for rel, body in sorted(data.items())
    ]
    index = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "noarch": "generic",
        "subdir": "noarch",
        "depends": [],
        "license": "MIT",
    }
    target = channel / "noarch" / f"{name}-{version}-{build}.tar.bz2"
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:bz2") as tar:

        def add(rel: str, body: bytes, mode: int) -> None:
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.mtime = len(body), mode, 0
            tar.addfile(info, io.BytesIO(body))

        add("info/index.json", json.dumps(index).encode(), 0o644)
        add("info/paths.json", json.dumps({"paths": paths, "paths_version": 1}).encode(), 0o644)
        for rel, body in sorted(data.items()):
            add(rel, body, 0o755 if rel in executable else 0o644)
    target.write_bytes(buffer.getvalue())
    return target


def index_channel(channel: Path) -> None:
    """Write ``repodata.json`` for every subdirectory of ``channel`` (``rattler.index.index_fs``)."""
    from rattler.index import index_fs

    (channel / "noarch").mkdir(parents=True, exist_ok=True)
    asyncio.run(index_fs(channel, write_zst=False, write_shards=False, force=True))


def write_lock(
    path: Path,
    channel: Path,
    environments: Mapping[str, Iterable[str]],
    platforms: Iterable[str] = ("linux-64",),
) -> Path:
    """Write a ``pixi.lock`` at ``path``: each environment locks the named packages of ``channel``.

    Args:
        path: The lock file to write.
        channel: A channel folder indexed with `index_channel`.
        environments: ``{environment name: package names}``.
        platforms: The platforms every environment is locked for.
    """
    import rattler

    records = {}
    for subdir in sorted(p for p in channel.iterdir() if (p / "repodata.json").is_file()):
        repodata = rattler.RepoData.from_path(subdir / "repodata.json")
        for rec in repodata.into_repo_data(rattler.Channel(channel.as_uri())):
            records[rec.name.normalized] = rec
    lock_platforms = [rattler.LockPlatform(p) for p in platforms]
    lock = rattler.LockFile(lock_platforms)
    for env_name, names in environments.items():
        lock.set_channels(env_name, [rattler.LockChannel(channel.as_uri())])
        for platform in lock_platforms:
            for pkg in names:
                lock.add_conda_package(env_name, platform, records[pkg])
    lock.to_path(path)
    return path
