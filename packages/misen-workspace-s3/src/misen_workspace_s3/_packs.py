"""Record packs: many records read in a bounded number of requests.

A store answers a listing with each object's name and ETag, a thousand per request, but never with contents;
reading 10,000 records one by one is 10,000 requests. So every process also keeps, for each record it writes,
the record's bytes and their MD5 (the ETag S3 gives an object written in one PUT), and at `sync` (the end of
every run) uploads them together as one object, ``packs/<time>-<id>.json``: ``{kind: {key: [md5, text]}}``.

A batched read (`PackReader.read`) lists ``records/<kind>/`` (pages of a thousand), reads every pack (a pack
never changes once written, so each is read once per workspace object), and takes a record's value from a pack
only where the listed ETag equals the MD5 kept beside that value: the bytes are then exactly those of the
object, whatever wrote it since. Everything else (a record written by a process that never reached its `sync`,
a store whose ETags are not MD5s, a pack that could not be read) is read the ordinary way, one request each. So
packs only ever save requests; they never decide what a record says.

When more than `COMPACT_AFTER` packs exist, a batched read merges them into one and deletes the others (two
processes doing so at once leave duplicates, which are harmless).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from misen_workspace_s3._fs import Remote

__all__ = ["COMPACT_AFTER", "PackReader", "PackWriter", "md5_hex"]

#: Packs beyond which a batched read merges them into one.
COMPACT_AFTER = 16
#: Records kept in memory before a pack is uploaded without waiting for `sync`.
FLUSH_AFTER = 5000
PREFIX = "packs"


def md5_hex(data: bytes) -> str:
    """The MD5 of ``data`` in hex: S3's ETag of an object written by one PUT."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class PackWriter:
    """The records this process wrote since its last pack."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote
        self.pending: dict[str, dict[str, list[str]]] = {}
        self.count = 0

    def add(self, kind: str, key: str, data: bytes) -> None:
        """Remember record ``kind/key`` as written with ``data``; uploads a pack when many are waiting."""
        self.pending.setdefault(kind, {})[key] = [md5_hex(data), data.decode()]
        self.count += 1
        if self.count >= FLUSH_AFTER:
            self.flush()

    def forget(self, kind: str, key: str) -> None:
        self.pending.get(kind, {}).pop(key, None)

    def flush(self) -> None:
        """Upload what is waiting as one pack (nothing if nothing is)."""
        pending = {kind: entries for kind, entries in self.pending.items() if entries}
        self.pending, self.count = {}, 0
        if pending:
            write_pack(self.remote, pending)


def write_pack(remote: Remote, entries: dict[str, dict[str, list[str]]]) -> str:
    name = f"{PREFIX}/{time.time():017.6f}-{os.getpid()}-{uuid.uuid4().hex[:12]}.json"
    remote.write(name, json.dumps(entries, separators=(",", ":")).encode())
    return name


class PackReader:
    """Batched reads of records through a listing and the packs (kept per workspace object: packs never change)."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote
        self.packs: dict[str, dict[str, dict[str, list[str]]]] = {}

    def _load(self) -> list[dict[str, dict[str, list[str]]]]:
        names = sorted(
            e["name"] for e in self.remote.listdir(PREFIX) if e.get("type") == "file" and e["name"].endswith(".json")
        )
        missing = [n for n in names if n not in self.packs]
        for name, data in self.remote.read_many(missing).items():
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                value = json.loads(data)
                if isinstance(value, dict):
                    self.packs[name] = value
        present = [n for n in names if n in self.packs]
        if len(present) > COMPACT_AFTER:
            self._compact(present)
        return [self.packs[n] for n in present if n in self.packs]

    def _compact(self, names: list[str]) -> None:
        merged: dict[str, dict[str, list[str]]] = {}
        for name in names:  # oldest first: a later pack's entry for the same record wins
            for kind, entries in self.packs[name].items():
                if isinstance(entries, dict):
                    merged.setdefault(kind, {}).update(entries)
        try:
            new = write_pack(self.remote, merged)
        except Exception:
            return  # a read-only store: keep reading the packs as they are
        self.packs[new] = merged
        for name in names:
            with contextlib.suppress(Exception):
                self.remote.delete(name)
            self.packs.pop(name, None)

    def read(self, kind: str, keys: list[str], rel: Any) -> tuple[dict[str, bytes], list[str]]:
        """``(found, left)``: the bytes of the records of ``keys`` that a pack holds exactly as stored, and the
        keys that exist but must be read one by one. Keys with no record are in neither. ``rel(key)`` is the
        record's path."""
        listed: dict[str, str] = {}
        entry: dict[str, Any]
        for entry in self.remote.find(f"records/{kind}"):
            listed[entry["name"]] = str(entry.get("ETag") or entry.get("etag") or "").strip('"')
        packs = self._load() if listed else []
        found: dict[str, bytes] = {}
        left: list[str] = []
        for key in keys:
            path = rel(key)
            etag = listed.get(path)
            if etag is None:
                continue
            for pack in reversed(packs):
                held = pack.get(kind, {}).get(key)
                if isinstance(held, list) and len(held) == 2 and held[0] == etag:
                    data = str(held[1]).encode()
                    if md5_hex(data) == etag:
                        found[key] = data
                        break
            else:
                left.append(key)
        return found, left
