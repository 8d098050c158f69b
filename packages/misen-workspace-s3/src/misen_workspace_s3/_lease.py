"""Task locks across machines: a lease object created with a conditional write, refreshed by a background
thread while held, and taken over with a compare-and-swap only once it expired (or its holder died on this host).

The protocol is described for users in the package README ("Lease protocol").
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from misen.errors import TaskLockedError
from misen.workspace import LockHolder

from misen_workspace_s3._errors import PreconditionFailed
from misen_workspace_s3._fs import Remote

__all__ = ["LeaseKeeper", "live_holder"]

#: How many read/judge/write rounds a contended `acquire` tries before giving up.
_ROUNDS = 6


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


BOOT_ID = _boot_id()


def _parse(data: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(data)
    except ValueError:
        return None
    return body if isinstance(body, dict) and isinstance(body.get("holder"), dict) else None


def _pid_dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False
    return False


def is_live(body: dict[str, Any] | None, now: float | None = None) -> bool:
    """Whether a lease still protects its holder: not expired, and not held by a dead process on this host."""
    if body is None:
        return False  # unreadable: no valid holder (we never write partial leases, so it is foreign garbage)
    now = time.time() if now is None else now
    try:
        if float(body.get("expires", 0.0)) <= now:
            return False
    except (TypeError, ValueError):
        return False
    holder = body["holder"]
    # Same machine (same host name *and* same boot): a dead pid cannot be refreshing, so take over at once.
    same_machine = (
        bool(BOOT_ID) and body.get("boot") == BOOT_ID and holder.get("host") == LockHolder.current().host
    )
    return not (same_machine and _pid_dead(int(holder.get("pid", 0))))


def live_holder(remote: Remote, rel: str) -> LockHolder | None:
    """The holder of a live lease at ``rel``, or ``None``. Only reads."""
    data = remote.read(rel)
    body = _parse(data) if data is not None else None
    if not is_live(body):
        return None
    assert body is not None
    return LockHolder.from_dict(body["holder"])


def _describe(body: dict[str, Any], where: str) -> str:
    holder = LockHolder.from_dict(body["holder"])
    left = float(body.get("expires", 0.0)) - time.time()
    return f"{holder.describe()} (lease {where}, expires in {max(0.0, left):.0f} s unless refreshed)"


class LeaseKeeper:
    """One held (or wanted) lease: `acquire`, then a background refresh until `release`."""

    def __init__(self, remote: Remote, rel: str, key: str, holder: LockHolder, lease_seconds: float) -> None:
        self.remote = remote
        self.rel = rel
        self.key = key
        self.holder = holder
        self.lease_seconds = lease_seconds
        self.token = uuid.uuid4().hex
        self.tag = ""
        #: Set when a refresh found the lease taken over by someone else (our process stalled past expiry).
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()

    def _body(self) -> bytes:
        now = time.time()
        return json.dumps(
            {
                "version": 1,
                "key": self.key,
                "token": self.token,
                "holder": self.holder.as_dict(),
                "boot": BOOT_ID,
                "lease_seconds": self.lease_seconds,
                "renewed": now,
                "expires": now + self.lease_seconds,
            },
            sort_keys=True,
        ).encode()

    def _ours(self, body: dict[str, Any] | None) -> bool:
        return body is not None and body.get("token") == self.token

    def acquire(self) -> None:
        """Take the lease or raise `TaskLockedError` naming the live holder."""
        for _ in range(_ROUNDS):
            try:
                self.tag = self.remote.create(self.rel, self._body())
                break
            except (FileExistsError, PreconditionFailed):
                pass
            current = self.remote.read_tagged(self.rel)
            if current is None:
                continue  # released between our create and our read: try to create again
            data, tag = current
            body = _parse(data)
            if self._ours(body):
                self.tag = tag  # our create succeeded although its answer was lost and retried
                break
            if body is not None and is_live(body):
                raise TaskLockedError(
                    f"task {self.key} is already running: {_describe(body, self.remote.where(self.rel))}",
                    LockHolder.from_dict(body["holder"]),
                )
            try:  # expired, or its holder died here: compare-and-swap, so of several takers exactly one wins
                self.tag = self.remote.replace_if(self.rel, self._body(), tag)
                break
            except PreconditionFailed:
                continue  # someone else changed it first: read it again and judge the new lease
        else:
            raise TaskLockedError(
                f"task {self.key}: the lock at {self.remote.where(self.rel)} is contended; retry"
            )
        self._thread = threading.Thread(
            target=self._refresh_loop, name=f"misen-lease-{self.key[:12]}", daemon=True
        )
        self._thread.start()

    def _refresh_loop(self) -> None:
        interval = max(0.05, self.lease_seconds / 3)
        while not self._stop.wait(interval):
            with self._mutex:
                if self._stop.is_set():
                    return
                try:
                    self._refresh()
                except Exception as exc:  # keep trying: the lease holds until it expires
                    print(f"misen: could not refresh the lock of task {self.key}: {exc}", file=sys.stderr)
            if self.lost:
                return

    def _refresh(self) -> None:
        try:
            self.tag = self.remote.replace_if(self.rel, self._body(), self.tag)
        except PreconditionFailed:
            current = self.remote.read_tagged(self.rel)
            if current is not None and self._ours(_parse(current[0])):
                self.tag = current[1]  # our previous write landed although its answer was lost
                return
            self.lost = True
            print(
                f"misen: the lock of task {self.key} was taken over by another process after it expired "
                f"(this process stalled longer than lease_seconds={self.lease_seconds})",
                file=sys.stderr,
            )

    def release(self) -> None:
        """Stop refreshing and delete the lease if it is still ours."""
        self._stop.set()
        with self._mutex:
            pass  # wait for a refresh in progress
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.lost or not self.tag:
            return
        try:
            self.remote.delete_if(self.rel, self.tag)
        except PreconditionFailed:
            current = self.remote.read_tagged(self.rel)
            if current is not None and self._ours(_parse(current[0])):
                try:
                    self.remote.delete_if(self.rel, current[1])
                except Exception as exc:
                    print(f"misen: could not release the lock of task {self.key}: {exc}", file=sys.stderr)
        except Exception as exc:  # the lease expires by itself
            print(f"misen: could not release the lock of task {self.key}: {exc}", file=sys.stderr)
