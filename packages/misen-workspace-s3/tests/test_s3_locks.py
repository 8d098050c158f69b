"""Task locks of the S3 workspace: processes racing on one lock, lease refresh, expiry and takeover."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from misen.errors import TaskLockedError
from misen.workspace import LockHolder
from misen_workspace_s3 import S3Workspace

shared_only = pytest.mark.parametrize("backend", ["s3", "file"], indirect=True)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


RACER = """
import json, sys, time
from pathlib import Path
from misen.errors import TaskLockedError
from misen.workspace import LockHolder, Workspace

ws = Workspace.from_spec(json.loads(sys.argv[1]))
d, me, rounds = Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
ws.get_record("task", "warm-up")  # connect before the race starts
(d / f"ready-{me}").touch()
for r in range(rounds):
    while not (d / f"go-{r}").exists():
        time.sleep(0.002)
    try:
        with ws.lock(f"race{r}", LockHolder.current(run=me, task="race")):
            (d / f"won-{r}-{me}").touch()
            while not (d / f"release-{r}").exists():
                time.sleep(0.01)
    except TaskLockedError as exc:
        (d / f"lost-{r}-{me}").write_text(str(exc))
    (d / f"done-{r}-{me}").touch()
ws.close()
"""


@shared_only
def test_processes_racing_on_one_lock_exactly_one_wins(
    make_ws: Callable[..., S3Workspace], popen_child: Callable[..., Any], tmp_path: Path
) -> None:
    ws = make_ws()
    spec = json.dumps(ws.spec())
    d = tmp_path / "race"
    d.mkdir()
    rounds, racers = 4, 3
    procs = {str(i): popen_child(RACER, spec, str(d), str(i), str(rounds)) for i in range(racers)}
    wait_for("racers ready", lambda: all((d / f"ready-{i}").exists() for i in procs))
    for r in range(rounds):
        (d / f"go-{r}").touch()
        wait_for(
            f"round {r}",
            lambda r=r: len(list(d.glob(f"won-{r}-*"))) + len(list(d.glob(f"lost-{r}-*"))) == racers,
        )
        winners = [p.name.rsplit("-", 1)[1] for p in d.glob(f"won-{r}-*")]
        assert len(winners) == 1, f"round {r}: winners {winners}"
        pid = procs[winners[0]].pid
        holder = ws.lock_holder(f"race{r}")
        assert holder is not None and holder.pid == pid
        for lost in d.glob(f"lost-{r}-*"):
            message = lost.read_text()
            assert f"pid {pid}" in message and "already running" in message
        (d / f"release-{r}").touch()
        wait_for(f"round {r} done", lambda r=r: len(list(d.glob(f"done-{r}-*"))) == racers)
        assert ws.lock_holder(f"race{r}") is None
    for proc in procs.values():
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err


def foreign_lease(expires_in: float, host: str = "gpu-node-7") -> bytes:
    now = time.time()
    holder = {"host": host, "pid": 4242, "since": now - 100, "run": "other-run", "task": "train"}
    return json.dumps(
        {"token": "t-foreign", "holder": holder, "boot": "another-boot", "expires": now + expires_in}
    ).encode()


def test_an_expired_lease_is_taken_over(make_ws: Callable[..., S3Workspace]) -> None:
    ws = make_ws()
    ws.remote.write("locks/job.json", foreign_lease(1.5))
    with pytest.raises(TaskLockedError) as info:
        with ws.lock("job", LockHolder.current()):
            pass
    assert "gpu-node-7" in str(info.value) and "pid 4242" in str(info.value)
    assert isinstance(info.value.holder, LockHolder) and info.value.holder.host == "gpu-node-7"
    held = ws.lock_holder("job")
    assert held is not None and held.host == "gpu-node-7"
    wait_for("the lease to expire", lambda: ws.lock_holder("job") is None, timeout=10)
    with ws.lock("job", LockHolder.current(run="mine")):
        now_held = ws.lock_holder("job")
        assert now_held is not None and now_held.pid == os.getpid() and now_held.run == "mine"
    assert ws.lock_holder("job") is None and ws.remote.read("locks/job.json") is None


def test_of_several_takers_of_an_expired_lease_one_wins(make_ws: Callable[..., S3Workspace]) -> None:
    workspaces = [make_ws() for _ in range(4)]
    for round_ in range(3):
        key = f"takeover{round_}"
        workspaces[0].remote.write(f"locks/{key}.json", foreign_lease(-1))
        barrier = threading.Barrier(len(workspaces))
        release = threading.Event()
        outcome: dict[int, str] = {}

        def take(
            i: int,
            ws: S3Workspace,
            key: str = key,
            barrier: threading.Barrier = barrier,
            release: threading.Event = release,
            outcome: dict[int, str] = outcome,
        ) -> None:
            barrier.wait()
            try:
                with ws.lock(key, LockHolder.current(run=f"r{i}")):
                    outcome[i] = "won"
                    release.wait(30)
            except TaskLockedError as exc:
                outcome[i] = str(exc)

        threads = [threading.Thread(target=take, args=(i, ws)) for i, ws in enumerate(workspaces)]
        for t in threads:
            t.start()
        wait_for("every taker", lambda outcome=outcome: len(outcome) == len(workspaces))
        release.set()
        for t in threads:
            t.join(30)
        assert list(outcome.values()).count("won") == 1, outcome
        assert all("gpu-node-7" not in v for v in outcome.values()), "a loser must name the new holder"


HOLDER = """
import json, sys, time
from pathlib import Path
from misen.workspace import LockHolder, Workspace

ws = Workspace.from_spec(json.loads(sys.argv[1]))
d = Path(sys.argv[2])
with ws.lock("long", LockHolder.current(run="holder", task="long")):
    (d / "held").touch()
    while not (d / "stop").exists():
        time.sleep(0.01)
(d / "released").touch()
ws.close()
"""


@shared_only
def test_a_held_lease_is_refreshed_past_its_lifetime(
    make_ws: Callable[..., S3Workspace], popen_child: Callable[..., Any], tmp_path: Path
) -> None:
    # A lifetime long enough that a refresh (every third of it) is not missed on a loaded machine, short enough
    # that the loop below outlives it three times over.
    ws = make_ws(lease_seconds=1.5)
    proc = popen_child(HOLDER, json.dumps(ws.spec()), str(tmp_path))
    wait_for("the lock to be held", lambda: (tmp_path / "held").exists())
    started = time.monotonic()
    attempts = 0
    while time.monotonic() - started < 4.5:  # three lease lifetimes: only refreshing keeps it
        with pytest.raises(TaskLockedError, match=f"pid {proc.pid}"):
            with ws.lock("long", LockHolder.current()):
                pass
        attempts += 1
        time.sleep(0.1)
    assert attempts >= 5
    (tmp_path / "stop").touch()
    wait_for("release", lambda: (tmp_path / "released").exists())
    assert proc.wait(30) == 0
    with ws.lock("long", LockHolder.current()):
        pass


@shared_only
def test_a_holder_killed_on_this_machine_is_taken_over_at_once(
    make_ws: Callable[..., S3Workspace], popen_child: Callable[..., Any], tmp_path: Path
) -> None:
    ws = make_ws(lease_seconds=3600)
    proc = popen_child(HOLDER, json.dumps(ws.spec()), str(tmp_path))
    wait_for("the lock to be held", lambda: (tmp_path / "held").exists())
    holder = ws.lock_holder("long")
    assert holder is not None and holder.pid == proc.pid
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert ws.lock_holder("long") is None  # dead pid on this very machine: not a live holder
    with ws.lock("long", LockHolder.current(run="after")):
        again = ws.lock_holder("long")
        assert again is not None and again.run == "after"


def test_a_lease_taken_over_is_neither_refreshed_nor_released(make_ws: Callable[..., S3Workspace]) -> None:
    from misen_workspace_s3._lease import LeaseKeeper

    ws = make_ws()
    keeper = LeaseKeeper(ws.remote, "locks/stalled.json", "stalled", LockHolder.current(), lease_seconds=3600)
    keeper.acquire()
    # While this holder "stalled", its lease expired and another machine took it over.
    foreign = foreign_lease(3600)
    ws.remote.write("locks/stalled.json", foreign)
    keeper._refresh()  # conditional on the ETag of our last write: must not overwrite the new holder
    assert keeper.lost
    assert ws.remote.read("locks/stalled.json") == foreign
    keeper.release()
    assert ws.remote.read("locks/stalled.json") == foreign
    holder = ws.lock_holder("stalled")
    assert holder is not None and holder.host == "gpu-node-7"


def test_refresh_extends_the_lease(make_ws: Callable[..., S3Workspace]) -> None:
    from misen_workspace_s3._lease import LeaseKeeper

    ws = make_ws()
    keeper = LeaseKeeper(ws.remote, "locks/fresh.json", "fresh", LockHolder.current(), lease_seconds=3600)
    keeper.acquire()
    before = json.loads(ws.remote.read("locks/fresh.json") or b"")
    time.sleep(0.01)
    keeper._refresh()
    after = json.loads(ws.remote.read("locks/fresh.json") or b"")
    assert not keeper.lost and after["token"] == before["token"] and after["expires"] > before["expires"]
    keeper.release()
    assert ws.remote.read("locks/fresh.json") is None
