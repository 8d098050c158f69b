"""Local copies of stored results: downloaded once, checked byte for byte against the manifest, then renamed
into the cache, so a half-downloaded or damaged copy is never served."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from misen.errors import ResultCorruptedError
from misen.serializer import MANIFEST

from misen_workspace_s3._fs import Remote

__all__ = ["download_result", "sizes_match"]



def sizes_match(local: Path) -> bool:
    """Whether a local copy still has every file of its manifest at the recorded size (a cheap check)."""
    from misen.serializer import read_manifest

    try:
        files = read_manifest(local)["files"]
        return all((local / name).stat().st_size == info["size"] for name, info in files.items())
    except (OSError, ResultCorruptedError, KeyError, TypeError):
        return False


def download_result(remote: Remote, rel: str, result_hash: str, target: Path) -> Path | None:
    """Download the committed result at ``rel`` to ``target``; ``None`` if it is not committed.

    Raises `ResultCorruptedError` if the stored copy lacks a file or fails its checksums.
    """
    from misen.serializer import check_result

    raw = remote.read(f"{rel}/{MANIFEST}")
    if raw is None:
        return None
    where = remote.where(rel)
    try:
        manifest = json.loads(raw)
        names = sorted(manifest["files"])
    except (ValueError, KeyError, TypeError):
        raise ResultCorruptedError(f"result {where} has a malformed manifest") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".download-"))
    try:
        for name in names:
            if ".." in name.split("/") or name.startswith("/"):
                raise ResultCorruptedError(f"result {where}: its manifest names a file outside it: {name!r}")
            try:
                remote.get_file(f"{rel}/{name}", tmp / name)
            except FileNotFoundError:
                raise ResultCorruptedError(f"result {where} is missing its file {name}") from None
        (tmp / MANIFEST).write_bytes(raw)
        # Every byte, once; later loads of the local copy check sizes and the digests of small files.
        check_result(tmp, manifest, full=True)
        try:
            os.rename(tmp, target)
        except OSError:  # another process downloaded it first: use theirs
            if not (target / MANIFEST).is_file():
                raise
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
