"""`S3Workspace`: misen's workspace on object storage (s3://, gs://) or any fsspec URL (memory://, file://).

The layout under the URL, the commit protocol of results and the lease protocol of locks are described in the
package README; the helpers live in `_fs` (store access, retries, conditional writes), `_lease` and `_sync`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs
from misen.errors import ConfigError
from misen.serializer import MANIFEST
from misen.workspace import LockHolder, LogEntry, Workspace, WorkspaceSettings

from misen_workspace_s3._packs import PackReader, PackWriter
from misen_workspace_s3._staging import sweep_dead_staging

__all__ = ["S3Settings", "S3Workspace"]

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]*$")
#: From this many keys on, a batched read lists the store (a request per thousand objects) instead of asking for
#: each object (a request each).
LIST_FROM = 64


def _positive(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"`{attribute.name}` must be greater than 0, not {value!r}")


def _not_negative(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"`{attribute.name}` must be 0 or more, not {value!r}")


def _url(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not value.strip():
        raise ValueError('`url` is required: the bucket and prefix, e.g. url = "s3://my-bucket/misen"')


@attrs.define
class S3Settings(WorkspaceSettings):
    """The ``[workspace]`` section for ``type = "s3"``. Credentials are never settings: see the README."""

    url: str = attrs.field(
        default="",
        validator=_url,
        metadata={
            "help": "Where the workspace lives: bucket and prefix (s3://bucket/prefix, gs://bucket/prefix), or any "
            "fsspec URL (file:///shared/misen, memory://name)."
        },
    )
    endpoint_url: str = attrs.field(
        default="",
        metadata={"help": "S3-compatible endpoint (MinIO, Ceph, moto...); empty for AWS itself."},
    )
    region: str = attrs.field(
        default="", metadata={"help": "AWS region of the bucket; empty: the AWS default."}
    )
    profile: str = attrs.field(
        default="",
        metadata={
            "help": "AWS profile (in ~/.aws/config) to take credentials from; empty: the usual AWS chain."
        },
    )
    cache_dir: str = attrs.field(
        default="",
        metadata={
            "help": "Local directory for downloaded results, logs, work directories and staging; empty: "
            "$XDG_CACHE_HOME/misen/s3/<bucket-prefix-hash> (~/.cache/...)."
        },
    )
    lease_seconds: float = attrs.field(
        default=60.0,
        validator=_positive,
        metadata={
            "help": "Lifetime of a task lock's lease; refreshed every third of it while the task runs. A crashed "
            "holder's lock is taken over after this long (at once on its own machine)."
        },
    )
    retries: int = attrs.field(
        default=5,
        validator=_positive,
        metadata={"help": "Attempts of each store request on transient errors, with exponential backoff."},
    )
    log_upload_interval: float = attrs.field(
        default=10.0,
        validator=_not_negative,
        metadata={"help": "Seconds between uploads of a running task's log (0: only when the task ends)."},
    )


class S3Workspace(Workspace):
    """A workspace shared through a bucket: safe across machines, with a local cache of what it read.

    Args:
        settings: An `S3Settings`; or pass its fields as keyword arguments (``S3Workspace(url="s3://b/p")``).
    """

    PLUGIN_NAME: ClassVar[str] = "s3"
    ALIASES: ClassVar[tuple[str, ...]] = ("gcs", "fsspec")
    Settings: ClassVar[type[Any]] = S3Settings

    def __init__(self, settings: Any = None, **overrides: Any) -> None:
        super().__init__(settings, **overrides)
        from misen_workspace_s3._errors import S3WorkspaceError
        from misen_workspace_s3._fs import Remote
        from misen_workspace_s3._sync import Uploader

        s = self.settings
        url = s.url.strip()
        if "://" not in url:  # a plain path: a local (shared file system) workspace
            url = "file://" + os.path.abspath(os.path.expanduser(url))
        if s.cache_dir:
            s = attrs.evolve(s, cache_dir=os.path.abspath(os.path.expanduser(s.cache_dir)))
        # Absolute in the spec too, so that workers started in other directories open the same places.
        self.settings = s = attrs.evolve(s, url=url)
        try:
            self.remote = Remote(
                url, endpoint_url=s.endpoint_url, region=s.region, profile=s.profile, retries=int(s.retries)
            )
        except S3WorkspaceError as exc:
            raise ConfigError(f"[workspace] url: {exc}") from None
        if s.cache_dir:
            self.cache = Path(s.cache_dir)
        else:
            base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
            digest = hashlib.blake2b(f"{url}\n{s.endpoint_url}".encode(), digest_size=6).hexdigest()
            slug = re.sub(r"[^A-Za-z0-9]+", "-", url.split("://", 1)[1]).strip("-")[:48]
            self.cache = base / "misen" / "s3" / f"{slug}-{digest}"
        self._uploader = Uploader(self.remote, float(s.log_upload_interval))
        self._packs = PackWriter(self.remote)
        self._pack_reader = PackReader(self.remote)
        self._mirrors: dict[str, Any] = {}
        self._swept_staging = False

    def describe(self) -> str:
        return self.remote.url

    def local_root(self) -> Path:
        self.cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.cache

    # --- records ------------------------------------------------------------------------------------------------

    @staticmethod
    def _check(*parts: str) -> None:
        for part in parts:
            if not _SAFE.match(part):
                raise ValueError(f"workspace key {part!r} has characters a store path cannot hold")

    def _record(self, kind: str, key: str) -> str:
        self._check(kind, key)
        return f"records/{kind}/{key}.json"

    def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        data = self.remote.read(self._record(kind, key))
        return self._decode(data)

    @staticmethod
    def _decode(data: bytes | None) -> dict[str, Any] | None:
        if data is None:
            return None
        try:
            value = json.loads(data)
        except ValueError:
            return None  # foreign garbage: every record we write is one whole JSON object
        return value if isinstance(value, dict) else None

    def get_records(self, kind: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Many records: one request each for a few keys; for many (on S3), a listing of the kind's records and
        the record packs (`misen_workspace_s3._packs`), so the requests grow with the store's size in thousands
        of objects, not with the number of keys."""
        self._check(kind)
        out: dict[str, dict[str, Any]] = {}
        left = list(keys)
        if self.remote.kind == "s3" and len(keys) >= LIST_FROM:
            found, left = self._pack_reader.read(kind, keys, lambda key: self._record(kind, key))
            for key, data in found.items():
                value = self._decode(data)
                if value is not None:
                    out[key] = value
        rels = {self._record(kind, key): key for key in left}
        for rel, data in self.remote.read_many(list(rels)).items():
            value = self._decode(data)
            if value is not None and rel in rels:
                out[rels[rel]] = value
        return out

    def put_record(self, kind: str, key: str, value: dict[str, Any], *, durable: bool = True) -> None:
        # Every PUT is durable once the store answers; ``durable`` changes nothing here.
        data = json.dumps(value, sort_keys=True, default=str).encode()
        self.remote.write(self._record(kind, key), data)
        if self.remote.kind == "s3":
            self._packs.add(kind, key, data)

    def delete_record(self, kind: str, key: str) -> None:
        self._packs.forget(kind, key)
        self.remote.delete(self._record(kind, key))

    def sync(self) -> None:
        """Upload the record pack of what this process wrote (the end of every run)."""
        self._packs.flush()

    def iter_records(self, kind: str) -> Iterator[str]:
        self._check(kind)
        for entry in self.remote.listdir(f"records/{kind}"):
            name = entry["name"].rsplit("/", 1)[-1]
            if entry.get("type") == "file" and name.endswith(".json"):
                yield name[: -len(".json")]

    # --- results ------------------------------------------------------------------------------------------------

    def _result(self, result_hash: str) -> str:
        self._check(result_hash)
        return f"results/{result_hash}"

    def has_result(self, result_hash: str) -> bool:
        # The manifest is the commit marker: it is uploaded only after every data file.
        return self.remote.exists(f"{self._result(result_hash)}/{MANIFEST}")

    def has_results(self, result_hashes: list[str]) -> set[str]:
        """For many hashes (on S3), one listing of ``results/`` (a request per thousand objects)."""
        if self.remote.kind != "s3" or len(result_hashes) < LIST_FROM:
            return super().has_results(result_hashes)
        for rh in result_hashes:
            self._check(rh)
        stored = set(self.iter_results())
        return {rh for rh in result_hashes if rh in stored}

    @contextlib.contextmanager
    def staging_dir(self) -> Iterator[Path]:
        base = self.local_root() / "staging"
        base.mkdir(parents=True, exist_ok=True)
        if not self._swept_staging:
            self._swept_staging = True
            sweep_dead_staging(base)
        # pid and host in the name let a later process tell a crashed writer's leftovers from a live one's
        path = Path(tempfile.mkdtemp(dir=base, prefix=f"stage-{os.getpid()}-", suffix=f"-{socket.gethostname()}"))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def commit_result(self, result_hash: str, staged: Path, *, durable: bool = True) -> None:
        from misen.serializer import read_manifest

        rel = self._result(result_hash)
        manifest = read_manifest(staged)
        if self.has_result(result_hash):
            return
        for name in sorted(manifest["files"]):
            self._upload_file(staged / name, f"{rel}/{name}")
        # Last: the marker. Until it lands, readers see no result; a crash before it leaves only unlisted parts.
        self._upload_file(staged / MANIFEST, f"{rel}/{MANIFEST}")
        if self.remote.kind != "local":
            target = self._cached(result_hash)
            target.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):  # keep the bytes we just wrote as the local copy
                os.rename(staged, target)

    def _upload_file(self, local: Path, rel: str) -> None:
        self.remote.put_file(local, rel)

    def _cached(self, result_hash: str) -> Path:
        return self.cache / "results" / result_hash

    def open_result(self, result_hash: str) -> Path | None:
        rel = self._result(result_hash)
        if self.remote.kind == "local":  # already a local directory: no copy
            path = Path(self.remote.path(rel))
            return path if (path / MANIFEST).is_file() else None
        from misen_workspace_s3._results import download_result, sizes_match

        local = self._cached(result_hash)
        if (local / MANIFEST).is_file():
            if sizes_match(local):
                return local
            shutil.rmtree(local, ignore_errors=True)
        return download_result(self.remote, self._result(result_hash), result_hash, local)

    def discard_local_copy(self, result_hash: str) -> bool:
        """A local copy that failed its checks after download is dropped; the next open fetches it again (the
        store's copy is checked on the way)."""
        if self.remote.kind == "local":
            return False
        local = self._cached(result_hash)
        if not local.exists():
            return False
        shutil.rmtree(local, ignore_errors=True)
        return True

    def delete_result(self, result_hash: str) -> None:
        rel = self._result(result_hash)
        self.remote.delete(f"{rel}/{MANIFEST}")  # uncommit first: readers stop seeing it at once
        self.remote.delete_tree(rel)
        shutil.rmtree(self._cached(result_hash), ignore_errors=True)

    def iter_results(self) -> Iterator[str]:
        for entry in self.remote.find("results"):
            parts = entry["name"].split("/")
            if len(parts) == 3 and parts[2] == MANIFEST:
                yield parts[1]

    # --- locks ------------------------------------------------------------------------------------------------

    def _lock_rel(self, key: str) -> str:
        self._check(key)
        return f"locks/{key}.json"

    @contextlib.contextmanager
    def lock(self, key: str, holder: LockHolder) -> Iterator[None]:
        from misen_workspace_s3._lease import LeaseKeeper

        keeper = LeaseKeeper(
            self.remote, self._lock_rel(key), key, holder, float(self.settings.lease_seconds)
        )
        keeper.acquire()
        try:
            yield
        finally:
            keeper.release()

    def lock_holder(self, key: str) -> LockHolder | None:
        from misen_workspace_s3._lease import live_holder

        return live_holder(self.remote, self._lock_rel(key))

    # --- logs ---------------------------------------------------------------------------------------------------

    def _log_rel(self, kind: str, key: str, attempt: str = "") -> str:
        self._check(kind, key, *([attempt] if attempt else []))
        return f"logs/{kind}/{key}/{attempt}.log" if attempt else f"logs/{kind}/{key}"

    def log_path(self, kind: str, key: str, attempt: str) -> Path:
        rel = self._log_rel(kind, key, attempt)
        path = self.local_root() / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self._uploader.watch(path, rel)  # uploaded every log_upload_interval seconds while it grows
        return path

    def publish_log(self, kind: str, key: str, attempt: str, path: Path, *, final: bool) -> None:
        self._uploader.publish(Path(path), self._log_rel(kind, key, attempt), final=final)

    def list_logs(self, kind: str, key: str) -> list[LogEntry]:
        from misen_workspace_s3._sync import entry_mtime

        base = self._log_rel(kind, key)
        local_dir = self.local_root() / base
        entries: dict[str, LogEntry] = {}
        for entry in self.remote.listdir(base):
            name = entry["name"].rsplit("/", 1)[-1]
            if not name.endswith(".log") or entry.get("type") != "file":
                continue
            local = local_dir / name
            try:
                st = local.stat()
                fresh = st.st_size == entry.get("size")
            except OSError:
                fresh = False
            if not fresh:  # another machine's log, or a newer upload of it: fetch a copy
                tmp = local.with_name(f".{name}.{uuid.uuid4().hex}")
                self.remote.get_file(entry["name"], tmp)
                os.replace(tmp, local)
                stamp = entry_mtime(entry)
                if stamp:
                    os.utime(local, (stamp, stamp))
            entries[name] = LogEntry(name[: -len(".log")], local, local.stat().st_mtime)
        if local_dir.is_dir():  # this machine's logs not uploaded yet
            for local in local_dir.glob("*.log"):
                if local.name not in entries:
                    entries[local.name] = LogEntry(local.stem, local, local.stat().st_mtime)
        return sorted(entries.values(), key=lambda e: (e.mtime, e.attempt), reverse=True)

    # --- work directories ---------------------------------------------------------------------------------------

    def work_dir(self, key: str, *, persistent: bool = True) -> Path:
        from misen_workspace_s3._sync import WorkDirMirror

        self._check(key)
        if not persistent:
            path = self.local_root() / "tmp" / f"work-{key}-{uuid.uuid4().hex[:12]}"
            path.mkdir(parents=True)
            return path
        path = self.local_root() / "work" / key
        mirror = self._mirrors.get(key)
        if mirror is None:
            mirror = self._mirrors[key] = WorkDirMirror(self.remote, f"work/{key}", path)
            mirror.pull()  # a task preempted on another machine resumes from what it uploaded
        path.mkdir(parents=True, exist_ok=True)
        return path

    def sync_work_dir(self, key: str, path: Path) -> None:
        from misen_workspace_s3._sync import WorkDirMirror

        self._check(key)
        mirror = self._mirrors.get(key)
        if mirror is None or mirror.local != Path(path):
            mirror = self._mirrors[key] = WorkDirMirror(self.remote, f"work/{key}", Path(path))
        mirror.push()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._packs.flush()
        self._uploader.close()
