"""Access to the store under the workspace's URL: one fsspec file system per process, every call retried with
exponential backoff, whole-object writes, and the conditional writes the lease protocol is built on.

Object stores (s3://, gs://) give atomic PUTs and conditional requests natively. The local (file://) back end
gets the same guarantees from a temporary file + rename, ``link`` for create-if-absent and a ``flock`` around
compare-and-swap; the memory:// back end (one process) from a process lock.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from misen_workspace_s3._errors import (
    CredentialsError,
    PreconditionFailed,
    S3WorkspaceError,
    StorageUnavailableError,
    credential_source,
    is_credentials_error,
    is_precondition_failed,
    is_transient,
    summary,
)

__all__ = ["Remote"]

T = TypeVar("T")
_MEMORY_CAS = threading.Lock()
#: Seconds of the first retry's backoff; doubled each time, with jitter, up to `_BACKOFF_CAP`.
BACKOFF_BASE = 0.2
_BACKOFF_CAP = 8.0


def _tag(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class Remote:
    """The store under one URL. Paths given to its methods are relative to the URL (``"records/task/ab.json"``)."""

    def __init__(
        self, url: str, *, endpoint_url: str = "", region: str = "", profile: str = "", retries: int = 5
    ) -> None:
        from fsspec.core import split_protocol  # type: ignore[import-untyped]

        protocol, _ = split_protocol(url)
        self.protocol = protocol or "file"
        if self.protocol in ("s3", "s3a"):
            self.kind = "s3"
        elif self.protocol in ("file", "local"):
            self.kind = "local"
        elif self.protocol == "memory":
            self.kind = "memory"
        else:
            self.kind = "other"
        self.url = url.rstrip("/")
        self.endpoint_url = endpoint_url
        self.region = region
        self.profile = profile
        self.retries = max(1, retries)
        self._fs: Any = None
        self._root = ""
        self._pid = -1
        self._lock = threading.Lock()
        self.fs  # noqa: B018  (open now, so a bad URL or a missing back end fails at construction)

    # --- the file system ------------------------------------------------------------------------------------------

    @property
    def fs(self) -> Any:
        # A file system opened before a fork holds an event loop and sockets of the parent: open a fresh one.
        if self._fs is None or self._pid != os.getpid():
            with self._lock:
                if self._fs is None or self._pid != os.getpid():
                    self._fs, self._root = self._open()
                    self._pid = os.getpid()
        return self._fs

    def _open(self) -> tuple[Any, str]:
        from fsspec.core import url_to_fs

        opts: dict[str, Any] = {"use_listings_cache": False}
        if self.kind == "s3":
            # One layer of retries (ours, with backoff): botocore's and s3fs's own are switched off.
            opts["config_kwargs"] = {
                "retries": {"max_attempts": 1, "mode": "standard"},
                "connect_timeout": 10,
                "read_timeout": 60,
            }
            if self.profile:
                opts["profile"] = self.profile
            if self.region:
                opts["client_kwargs"] = {"region_name": self.region}
        if self.endpoint_url and self.kind in ("s3", "other"):
            opts["endpoint_url"] = self.endpoint_url
        if self.kind in ("local", "memory"):
            opts = {}
        try:
            fs, root = url_to_fs(self.url, **opts)
        except ImportError as exc:
            raise S3WorkspaceError(
                f"workspace url {self.url!r} needs a file system package that is not installed ({exc})"
            ) from None
        except ValueError as exc:
            raise S3WorkspaceError(f"workspace url {self.url!r}: {exc}") from None
        if self.kind == "s3":
            fs.retries = 1  # s3fs's own retry loop: off, ours does it (a class attribute, not an argument)
        return fs, root.rstrip("/")

    def path(self, rel: str) -> str:
        """The file system path of ``rel``."""
        return f"{self._root}/{rel}" if rel else self._root

    def where(self, rel: str = "") -> str:
        """``rel`` as a URL, for messages."""
        return f"{self.url}/{rel}" if rel else self.url

    # --- retries ----------------------------------------------------------------------------------------------------

    def call(self, what: str, rel: str, fn: Callable[[], T], *, writing: bool = False) -> T:
        """Run ``fn``, retrying transient failures with exponential backoff; translate what is final."""
        for attempt in range(1, self.retries + 1):
            try:
                return fn()
            except FileNotFoundError:
                if writing and self.kind in ("s3", "other"):  # a write finds no object missing but the bucket
                    bucket = self._root.lstrip("/").split("/", 1)[0]
                    raise S3WorkspaceError(
                        f"{self.where(rel)}: {what} failed: bucket {bucket!r} does not exist "
                        f"(create it, or correct the workspace url)"
                    ) from None
                raise
            except (FileExistsError, PreconditionFailed):
                raise
            except Exception as exc:
                if is_credentials_error(exc) and self.kind in ("s3", "other"):
                    raise CredentialsError(
                        f"{self.where(rel)}: {what} was refused ({summary(exc)}); the credentials came from "
                        f"{credential_source(self.protocol, self.profile)}"
                    ) from None
                if is_precondition_failed(exc):
                    raise PreconditionFailed(summary(exc)) from exc
                if not is_transient(exc):
                    raise S3WorkspaceError(f"{self.where(rel)}: {what} failed ({summary(exc)})") from exc
                if attempt == self.retries:
                    raise StorageUnavailableError(
                        f"{self.where(rel)}: {what} failed after {attempt} attempts ({summary(exc)}); "
                        f"is the store at {self.endpoint_url or self.protocol + '://'} reachable?"
                    ) from exc
                delay = min(_BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
                time.sleep(delay * random.uniform(0.5, 1.0))
        raise AssertionError("unreachable")

    # --- plain objects ----------------------------------------------------------------------------------------------

    def read(self, rel: str) -> bytes | None:
        """The object's bytes, or ``None`` if there is none."""
        try:
            return self.call("read", rel, lambda: bytes(self.fs.cat_file(self.path(rel))))
        except (FileNotFoundError, IsADirectoryError):
            return None

    def read_many(self, rels: list[str]) -> dict[str, bytes]:
        """Several objects at once (concurrently where the back end can); missing ones are left out."""
        if not rels:
            return {}
        paths = {self.path(r): r for r in rels}
        got: dict[str, Any] = self.call(
            "read", rels[0].rsplit("/", 1)[0], lambda: self.fs.cat(list(paths), on_error="return")
        )
        out: dict[str, bytes] = {}
        for path, value in got.items():
            rel = paths.get(path) or paths.get(self.fs._strip_protocol(path), "")
            if isinstance(value, bytes | bytearray):
                out[rel] = bytes(value)
            elif not isinstance(value, FileNotFoundError):
                again = self.read(rel)  # a transient failure of one object: retry it alone
                if again is not None:
                    out[rel] = again
        return out

    def exists(self, rel: str) -> bool:
        try:
            self.call("look up", rel, lambda: self.fs.info(self.path(rel)))
            return True
        except FileNotFoundError:
            return False

    def info(self, rel: str) -> dict[str, Any] | None:
        try:
            return dict(self.call("look up", rel, lambda: self.fs.info(self.path(rel))))
        except FileNotFoundError:
            return None

    def write(self, rel: str, data: bytes) -> None:
        """Write a whole object atomically: a reader sees the old bytes or the new ones."""
        if self.kind == "local":
            self.call("write", rel, lambda: self._local_write(self.path(rel), data))
        else:
            self.call("write", rel, lambda: self.fs.pipe_file(self.path(rel), data), writing=True)

    def _local_write(self, path: str, data: bytes, *, exclusive: bool = False) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if exclusive:
                os.link(tmp, path)  # fails with FileExistsError if there is one: create-if-absent
            else:
                os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def put_file(self, local: Path, rel: str) -> None:
        """Upload one file as one object (atomically: a PUT or a completed multipart upload, or a rename)."""
        path = self.path(rel)
        if self.kind == "local":
            self.call("upload", rel, lambda: self._local_copy(local, path))
        else:
            self.call("upload", rel, lambda: self.fs.put_file(str(local), path), writing=True)

    def _local_copy(self, local: Path, path: str) -> None:
        import shutil

        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        try:
            shutil.copyfile(local, tmp)
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def get_file(self, rel: str, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        self.call("download", rel, lambda: self.fs.get_file(self.path(rel), str(local)))

    def delete(self, rel: str) -> None:
        try:
            self.call("delete", rel, lambda: self.fs.rm_file(self.path(rel)))
        except FileNotFoundError:
            pass

    def delete_tree(self, rel: str) -> None:
        try:
            self.call("delete", rel, lambda: self.fs.rm(self.path(rel), recursive=True))
        except FileNotFoundError:
            pass

    def listdir(self, rel: str) -> list[dict[str, Any]]:
        """The entries directly under ``rel`` (``name`` relative to the URL, ``type``, ``size``...)."""
        try:
            entries = self.call("list", rel, lambda: self.fs.ls(self.path(rel), detail=True))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [self._relative(e) for e in entries]

    def find(self, rel: str) -> list[dict[str, Any]]:
        """Every file under ``rel``, recursively."""
        try:
            found = self.call("list", rel, lambda: self.fs.find(self.path(rel), detail=True))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [self._relative(e) for e in found.values() if e.get("type") != "directory"]

    def _relative(self, entry: dict[str, Any]) -> dict[str, Any]:
        name = self.fs._strip_protocol(entry["name"]).rstrip("/")
        root = self.fs._strip_protocol(self._root).rstrip("/")
        entry = dict(entry)
        entry["name"] = name[len(root) + 1 :] if name.startswith(root + "/") else name
        return entry

    # --- conditional writes (the lease protocol) ----------------------------------------------------------------------

    def read_tagged(self, rel: str) -> tuple[bytes, str] | None:
        """The object's bytes and a version tag (its ETag) read together, or ``None`` if absent."""
        path = self.path(rel)

        def go() -> tuple[bytes, str]:
            if self.kind == "s3":
                from fsspec.asyn import sync  # type: ignore[import-untyped]

                return sync(self.fs.loop, _s3_get_tagged, self.fs, path)  # type: ignore[no-any-return]
            data = bytes(self.fs.cat_file(path))
            return data, _tag(data)

        try:
            return self.call("read", rel, go)
        except FileNotFoundError:
            return None

    def create(self, rel: str, data: bytes) -> str:
        """Write the object only if none exists (``If-None-Match: *``); its tag. `FileExistsError` otherwise."""
        path = self.path(rel)

        def go() -> str:
            if self.kind == "s3":
                try:
                    out = self.fs.pipe_file(path, data, mode="create")
                except Exception as exc:
                    # A 409 ConditionalRequestConflict (contention on AWS) means someone else is writing: lost.
                    if is_precondition_failed(exc):
                        raise FileExistsError(path) from exc
                    raise
                return str(out["ETag"])
            if self.kind == "local":
                self._local_write(path, data, exclusive=True)
            elif self.kind == "memory":
                with _MEMORY_CAS:
                    self.fs.pipe_file(path, data, mode="create")
            else:
                self.fs.pipe_file(path, data, mode="create")
            return _tag(data)

        return self.call("create", rel, go, writing=True)

    def replace_if(self, rel: str, data: bytes, tag: str) -> str:
        """Overwrite the object only if its tag is still ``tag`` (``If-Match``); the new tag.

        Raises `PreconditionFailed` if the object changed (or vanished) since ``tag`` was read.
        """
        path = self.path(rel)

        def go() -> str:
            if self.kind == "s3":
                try:
                    out = self.fs.pipe_file(path, data, IfMatch=tag)
                except FileNotFoundError:
                    raise PreconditionFailed(path) from None
                return str(out["ETag"])
            with self._cas(path):
                try:
                    current = bytes(self.fs.cat_file(path))
                except FileNotFoundError:
                    raise PreconditionFailed(path) from None
                if _tag(current) != tag:
                    raise PreconditionFailed(path)
                if self.kind == "local":
                    self._local_write(path, data)
                else:
                    self.fs.pipe_file(path, data)
            return _tag(data)

        return self.call("replace", rel, go)

    def delete_if(self, rel: str, tag: str) -> None:
        """Delete the object only if its tag is still ``tag``; `PreconditionFailed` if it changed."""
        path = self.path(rel)

        def go() -> None:
            if self.kind == "s3":
                from fsspec.asyn import sync

                bucket, key, _ = self.fs.split_path(path)
                sync(self.fs.loop, self.fs._call_s3, "delete_object", Bucket=bucket, Key=key, IfMatch=tag)
                return
            with self._cas(path):
                try:
                    current = bytes(self.fs.cat_file(path))
                except FileNotFoundError:
                    return
                if _tag(current) != tag:
                    raise PreconditionFailed(path)
                self.fs.rm_file(path)

        try:
            self.call("delete", rel, go)
        except FileNotFoundError:
            pass

    def _cas(self, path: str) -> Any:
        """Mutual exclusion for a compare-and-swap on back ends without conditional requests."""
        if self.kind == "local":
            from filelock import FileLock

            os.makedirs(os.path.dirname(path), exist_ok=True)
            return FileLock(f"{path}.cas")
        return _MEMORY_CAS


async def _s3_get_tagged(fs: Any, path: str) -> tuple[bytes, str]:
    bucket, key, _ = fs.split_path(path)
    resp = await fs._call_s3("get_object", Bucket=bucket, Key=key)
    body = resp["Body"]
    try:
        data = await body.read()
    finally:
        body.close()
    return bytes(data), str(resp["ETag"])
