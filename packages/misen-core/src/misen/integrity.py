"""Integrity of stored results: every byte is checked against its manifest before it is trusted.

Small files are checksummed on every load. A large file is checksummed in full the first time it is loaded (or
checked by ``misen workspace check``), and the verification is then recorded in the result's ``.verified``
sidecar, keyed by the file's size, inode, modification and change times: a later load trusts the record only
while every one of those is unchanged. Any write to the file (even one that restores its modification time)
moves its change time, so the next load checksums it again.

Damage is reported as `ResultDamagedError`, which names the result directory, the file and the kind of damage,
so callers (the caching rules, ``misen workspace check``) can act on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from misen.errors import ResultCorruptedError

#: The per-file checksum written into new manifests (xxHash's XXH3, 128 bits: integrity at memory speed).
DIGEST_FIELD = "xxh3"


def new_digest() -> Any:
    """A fresh incremental checksum object (``update(bytes)``, ``hexdigest()``) of the manifest's kind."""
    import xxhash

    return xxhash.xxh3_128()


def _digest_for(field: str) -> Any:
    if field == "xxh3":
        return new_digest()
    return hashlib.blake2b(digest_size=16)  # manifests written before the switch to XXH3


def file_digest(path: Path, field: str = DIGEST_FIELD) -> str:
    """The checksum of a file's bytes, as recorded in a manifest under ``field``."""
    h = _digest_for(field)
    with open(path, "rb", buffering=0) as f:
        # A buffer no larger than the file: zeroing 8 MiB for a 40-byte pickle cost more than reading it.
        buf = bytearray(max(1, min(8 * 1024 * 1024, os.fstat(f.fileno()).st_size + 1)))
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
    return str(h.hexdigest())

__all__ = [
    "ALWAYS_CHECK_BYTES",
    "VERIFIED",
    "ResultDamagedError",
    "check_files",
    "damaged_by_loader",
    "record_written",
]

#: Files up to this size are checksummed on every load; larger ones once per change (see the module docstring).
ALWAYS_CHECK_BYTES = 16 * 1024 * 1024
#: The sidecar file, inside a result directory, that records which large files were verified.
VERIFIED = ".verified"

#: Kinds of damage, as `ResultDamagedError.kind`.
KINDS = ("manifest", "missing", "size", "checksum", "unreadable", "unknown-serializer")


class ResultDamagedError(ResultCorruptedError):
    """A stored result is damaged; says where (``directory``, ``file``) and how (``kind``, one of `KINDS`)."""

    def __init__(self, directory: Path | str, file: str | None, kind: str, detail: str) -> None:
        self.directory = Path(directory)
        self.file = file
        self.kind = kind
        self.detail = detail
        super().__init__(f"result at {directory} is damaged: {detail}")

    @property
    def short(self) -> str:
        """A few words for a one-line report: ``checksum mismatch in value.npy``."""
        words = {
            "manifest": "unreadable manifest",
            "missing": "missing file",
            "size": "wrong size of",
            "checksum": "checksum mismatch in",
            "unreadable": "unreadable",
            "unknown-serializer": "unknown serializer in",
        }[self.kind]
        return f"{words} {self.file}" if self.file else words

    def __reduce__(self) -> Any:
        return (type(self), (str(self.directory), self.file, self.kind, self.detail))


def _stamp(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]


def _read_verified(directory: Path) -> dict[str, Any]:
    try:
        with open(directory / VERIFIED, "rb") as f:
            data = json.loads(f.read())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_verified(directory: Path, verified: dict[str, Any]) -> None:
    """Record verifications (best effort: a read-only result directory simply stays unrecorded)."""
    tmp = directory / f".{VERIFIED}.{os.getpid()}.tmp"
    with contextlib.suppress(OSError):
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, json.dumps(verified, sort_keys=True).encode())
        finally:
            os.close(fd)
        os.replace(tmp, directory / VERIFIED)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def record_written(directory: Path, files: dict[str, dict[str, Any]], field: str) -> None:
    """Record, at save time, the large files whose digests were computed over exactly the bytes written and
    that are already on stable storage (fsynced), so their first load need not read them twice."""
    verified: dict[str, Any] = {}
    for rel, info in files.items():
        if info["size"] > ALWAYS_CHECK_BYTES:
            with contextlib.suppress(OSError):
                verified[rel] = [*_stamp((directory / rel).stat()), info[field]]
    if verified:
        _write_verified(directory, verified)


def check_files(directory: Path, manifest: dict[str, Any], *, full: bool = False) -> None:
    """Verify every file of ``manifest`` in ``directory``; raise `ResultDamagedError` on the first damage.

    Args:
        directory: The result directory.
        manifest: Its manifest (already read).
        full: Checksum every file now, ignoring earlier verifications (``misen workspace check``).
    """
    verified: dict[str, Any] | None = None
    recorded = False
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ResultDamagedError(directory, "manifest.json", "manifest", "its manifest lists no files")
    for rel, info in files.items():
        path = directory / rel
        try:
            st = path.stat()
        except OSError:
            raise ResultDamagedError(directory, rel, "missing", f"its file {rel} is missing") from None
        if not isinstance(info, dict) or st.st_size != info.get("size"):
            expected = info.get("size") if isinstance(info, dict) else "?"
            raise ResultDamagedError(
                directory, rel, "size", f"file {rel} has {st.st_size} bytes, {expected} expected (truncated or changed)"
            )
        field = DIGEST_FIELD if DIGEST_FIELD in info else "blake2b"
        expected_digest = info.get(field)
        if not isinstance(expected_digest, str):
            raise ResultDamagedError(directory, rel, "checksum", f"file {rel} has no checksum in the manifest")
        stamp = [*_stamp(st), expected_digest]
        if not full and st.st_size > ALWAYS_CHECK_BYTES:
            if verified is None:
                verified = _read_verified(directory)
            if verified.get(rel) == stamp:
                continue
        if file_digest(path, field) != expected_digest:
            raise ResultDamagedError(directory, rel, "checksum", f"checksum mismatch in {rel}")
        if st.st_size > ALWAYS_CHECK_BYTES:
            if verified is None:
                verified = _read_verified(directory)
            verified[rel] = stamp
            recorded = True
    if recorded and verified is not None:
        _write_verified(directory, verified)


def damaged_by_loader(directory: Path, manifest: dict[str, Any], serializer: str, exc: BaseException) -> ResultDamagedError:
    """The damage report for a serializer that failed to load a result whose checksums passed."""
    files = sorted(manifest.get("files") or {})
    name = getattr(exc, "filename", None)
    if isinstance(name, str | os.PathLike):
        rel: str | None = os.path.relpath(os.fspath(name), directory)
    elif len(files) == 1:
        rel = files[0]
    else:
        rel = None
    where = f" in {rel}" if rel else (f" (files: {', '.join(files[:5])})" if files else "")
    message = str(exc).splitlines()[0] if str(exc) else ""
    detail = f"serializer {serializer!r} could not read it{where} ({type(exc).__name__}: {message[:200]})"
    return ResultDamagedError(directory, rel, "unreadable", detail)
