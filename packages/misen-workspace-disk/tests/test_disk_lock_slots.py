"""Task locks as byte-range slots of shared lock files: real processes and threads contending, keys that share a
slot, killed holders, probes that write nothing, and the per-task file fallback."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from misen.errors import TaskLockedError
from misen.workspace import LockHolder
from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
from misen_workspace_disk._locks import MARKER, survey, uses_slots
from misen_workspace_disk._maintenance import apply_gc, plan_gc

CTX = multiprocessing.get_context("fork")
TRIALS = 30
# Keys with the same first four hex digits share a slot (same shard file, same byte range).
K1, K2, K3 = ("abcde" + c * 27 for c in "123")


@pytest.fixture(params=["slots", "per-task"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _workspace(tmp_path: Path, mode: str, **settings: object) -> DiskWorkspace:
    root = tmp_path / "ws"
    if mode == "per-task":  # what a workspace whose file system refused byte-range locks carries
        (root / "locks").mkdir(parents=True)
        (root / "locks" / MARKER).touch()
    return DiskWorkspace(DiskWorkspaceSettings(directory=str(root), **settings))  # type: ignore[arg-type]


HOLD = """
import sys, time
from misen.workspace import LockHolder
from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
ws = DiskWorkspace(DiskWorkspaceSettings(directory=sys.argv[1]))
with ws.lock(sys.argv[2], LockHolder.current(task="held-" + sys.argv[2][-1])):
    print("locked", flush=True)
    time.sleep(600)
"""


def _hold(ws: DiskWorkspace, key: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, ws.root, key], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _gc(ws: DiskWorkspace) -> None:
    apply_gc(ws, plan_gc(ws))


def test_two_processes_contend_for_one_key(tmp_path: Path, mode: str, lock_race) -> None:  # type: ignore[no-untyped-def]
    ws = _workspace(tmp_path, mode)
    lock_race(ws.root, K1, TRIALS)
    locks = Path(ws.root) / "locks"
    if mode == "slots":
        assert sorted(p.name for p in locks.iterdir()) == ["a.lock"]  # one shared file, no folder, no file per key
    else:
        assert (locks / "ab" / f"{K1}.lock").is_file() and not (locks / "a.lock").exists()


def test_keys_sharing_a_slot_both_run(tmp_path: Path, mode: str) -> None:
    """A key whose slot another key holds is never reported running, and is taken at once."""
    ws = _workspace(tmp_path, mode)
    first = _hold(ws, K1)
    try:
        assert ws.lock_holder(K2) is None
        with ws.lock(K2, LockHolder.current(task="second")):
            assert ws.lock_holder(K2).task == "second" and ws.lock_holder(K2).pid == os.getpid()
            assert ws.lock_holder(K1).pid == first.pid
            with pytest.raises(TaskLockedError, match=f"pid {first.pid}"), ws.lock(K1, LockHolder.current()):
                pass
            with pytest.raises(TaskLockedError, match="second"), ws.lock(K2, LockHolder.current()):
                pass
            with ws.lock(K3, LockHolder.current(task="third")):  # a third key of the same slot
                assert ws.lock_holder(K3).task == "third"
        assert ws.lock_holder(K2) is None and ws.lock_holder(K1).pid == first.pid
    finally:
        _kill(first)
    assert ws.lock_holder(K1) is None


def test_a_holder_takes_another_key_of_its_own_slot(tmp_path: Path) -> None:
    """A task that computes another task in its body holds its lock meanwhile: if the other key shares the slot,
    it is taken at once (waiting for the slot would wait for ourselves)."""
    ws = _workspace(tmp_path, "slots")
    with ws.lock(K1, LockHolder.current(task="outer")), ws.lock(K2, LockHolder.current(task="inner")):
        assert ws.lock_holder(K1).task == "outer" and ws.lock_holder(K2).task == "inner"
    assert ws.lock_holder(K1) is None and ws.lock_holder(K2) is None


def test_two_processes_contend_for_a_key_whose_slot_is_taken(tmp_path: Path, lock_race) -> None:  # type: ignore[no-untyped-def]
    """The per-key file of a colliding key excludes like the slot does."""
    ws = _workspace(tmp_path, "slots")
    first = _hold(ws, K1)
    try:
        lock_race(ws.root, K2, TRIALS)
    finally:
        _kill(first)


def test_a_slot_holder_and_a_file_holder_of_one_key_exclude_each_other(tmp_path: Path) -> None:
    """K2 taken through its file while K1 held the slot; once K1 lets go, K2 is still held (a slot acquirer sees
    the file), and K1 is free."""
    ws = _workspace(tmp_path, "slots")
    first = _hold(ws, K1)
    second = _hold(ws, K2)  # through locks/ab/<K2>.lock
    try:
        assert (Path(ws.root) / "locks" / "ab" / f"{K2}.lock").is_file()
        _kill(first)
        assert ws.lock_holder(K1) is None and ws.lock_holder(K2).pid == second.pid
        with pytest.raises(TaskLockedError, match=f"pid {second.pid}"), ws.lock(K2, LockHolder.current()):
            pass
        with ws.lock(K1, LockHolder.current(task="after")):
            assert ws.lock_holder(K1).task == "after"
    finally:
        _kill(second)
    with ws.lock(K2, LockHolder.current()):  # the slot is free again, and so is the file
        assert ws.lock_holder(K2).pid == os.getpid()


@pytest.mark.parametrize("key", [K1, K2])
def test_a_killed_holder_frees_its_lock(tmp_path: Path, mode: str, key: str) -> None:
    ws = _workspace(tmp_path, mode)
    other = _hold(ws, K1) if key == K2 else None  # K2 then holds through its per-key file
    try:
        holder = _hold(ws, key)
        assert ws.lock_holder(key).pid == holder.pid
        _kill(holder)
        assert ws.lock_holder(key) is None
        with ws.lock(key, LockHolder.current(task="after")):
            assert ws.lock_holder(key).task == "after"
    finally:
        if other is not None:
            _kill(other)


def test_two_threads_of_one_process_exclude_each_other(tmp_path: Path, mode: str) -> None:
    ws = _workspace(tmp_path, mode)
    barrier = threading.Barrier(2, timeout=60)
    outcomes: list[tuple[int, str]] = []

    def contend(name: str) -> None:
        for i in range(TRIALS):
            barrier.wait()
            try:
                with ws.lock(K1, LockHolder.current(task=name)):
                    outcomes.append((i, "won"))
                    barrier.wait()
            except TaskLockedError:
                outcomes.append((i, "lost"))
                barrier.wait()

    threads = [threading.Thread(target=contend, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(outcomes) == [(i, what) for i in range(TRIALS) for what in ("lost", "won")]


def test_probe_writes_nothing(tmp_path: Path, mode: str, snapshot_tree) -> None:
    ws = _workspace(tmp_path, mode)
    assert ws.lock_holder(K1) is None and not (Path(ws.root) / "locks" / "a.lock").exists()
    with ws.lock(K2, LockHolder.current()):
        pass
    holder = _hold(ws, K1)
    try:
        before = snapshot_tree(Path(ws.root))
        for key in (K1, K2, K3, "ff" * 16, "not-hex"):
            ws.lock_holder(key)
        survey(ws.root + "/locks")
        assert snapshot_tree(Path(ws.root)) == before  # the shard file's size and mtime too
    finally:
        _kill(holder)


def test_lock_files_of_an_earlier_version_are_honoured_and_collected(tmp_path: Path) -> None:
    """A process of an earlier version holds ``locks/<key[:2]>/<key>.lock`` (a bare flock, its note inside)."""
    ws = _workspace(tmp_path, "slots")
    path = Path(ws.root) / "locks" / K1[:2] / f"{K1}.lock"
    path.parent.mkdir(parents=True)
    idle = path.parent / f"{K3}.lock"
    idle.write_text(json.dumps({"host": "elsewhere", "pid": 1, "since": 0}))
    code = (
        "import fcntl, json, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.write(fd, json.dumps({'host': os.uname().nodename, 'pid': os.getpid(), 'since': time.time(),"
        " 'task': 'old'}).encode())\n"
        "print('locked', flush=True)\n"
        "time.sleep(600)\n"
    )
    old = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert old.stdout is not None and old.stdout.readline().strip() == "locked"
        assert ws.lock_holder(K1).task == "old"
        with pytest.raises(TaskLockedError, match=f"pid {old.pid}"), ws.lock(K1, LockHolder.current()):
            pass
        assert (Path(ws.root) / "locks" / "a.lock").is_file()  # the slot was taken, then let go
        _gc(ws)
        assert path.exists() and not idle.exists()  # the held one stays, the idle one goes, the idle shard is emptied
        assert (Path(ws.root) / "locks" / "a.lock").stat().st_size == 0
    finally:
        _kill(old)
    with ws.lock(K1, LockHolder.current()):
        pass


def test_gc_keeps_a_shard_file_with_a_held_slot(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, "slots")
    with ws.lock("ff" * 16, LockHolder.current()):
        pass
    holder = _hold(ws, K1)
    try:
        assert dict(survey(ws.root + "/locks")) == {ws.root + "/locks/a.lock": 1, ws.root + "/locks/f.lock": 0}
        _gc(ws)
        locks = Path(ws.root) / "locks"
        assert (locks / "a.lock").stat().st_size > 0 and (locks / "f.lock").stat().st_size == 0
        assert ws.lock_holder(K1).pid == holder.pid
        assert plan_gc(ws).locks == []  # an emptied shard file is not listed again
    finally:
        _kill(holder)


def test_a_note_left_by_a_released_lock_is_not_believed(tmp_path: Path) -> None:
    """Release leaves the note in its slot: only a held range makes it the holder's."""
    ws = _workspace(tmp_path, "slots")
    with ws.lock(K1, LockHolder.current(task="first")):
        pass
    shard = Path(ws.root) / "locks" / "a.lock"
    assert K1.encode() in shard.read_bytes()  # the note stays
    assert ws.lock_holder(K1) is None
    with ws.lock(K2, LockHolder.current(task="second")):  # another key of the slot takes it directly
        assert ws.lock_holder(K2).task == "second" and ws.lock_holder(K1) is None
        assert not (Path(ws.root) / "locks" / K2[:2]).exists()  # no per-key file: the stale note was not a holder
    holder = _hold(ws, K1)
    try:
        with pytest.raises(TaskLockedError, match=f"pid {holder.pid}"), ws.lock(K1, LockHolder.current()):
            pass
    finally:
        _kill(holder)


def test_gc_empties_a_shard_file_an_acquirer_has_open(tmp_path: Path) -> None:
    """gc truncates an idle shard file rather than unlinking it: a process that opened it before still locks the
    file every later process locks."""
    from misen_workspace_disk import _slots

    ws = _workspace(tmp_path, "slots")
    with ws.lock(K1, LockHolder.current()):
        pass
    shard = Path(ws.root) / "locks" / "a.lock"
    early = os.open(shard, os.O_RDWR)
    try:
        _gc(ws)
        assert shard.stat().st_size == 0 and os.fstat(early).st_ino == shard.stat().st_ino
        holder = _hold(ws, K1)
        try:
            assert _slots.try_range(early, _slots.place(K1)[1]) is False  # the holder's range, in the same file
        finally:
            _kill(holder)
    finally:
        os.close(early)


REFUSE = """
import sys
from misen.workspace import LockHolder
from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings, _slots
_slots._SETLK = None  # as on a platform without open file description locks
ws = DiskWorkspace(DiskWorkspaceSettings(directory=sys.argv[1]))
with ws.lock(sys.argv[2], LockHolder.current(task="fallback")):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_refused_byte_range_locks_switch_the_workspace_to_per_task_files(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, "slots")
    proc = subprocess.Popen(
        [sys.executable, "-c", REFUSE, ws.root, K1], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        locks = Path(ws.root) / "locks"
        assert (locks / MARKER).exists() and (locks / "ab" / f"{K1}.lock").is_file()
        assert uses_slots(ws.root + "/locks") is False  # this process read the marker on its first lock
        with pytest.raises(TaskLockedError, match="fallback"), ws.lock(K1, LockHolder.current()):
            pass
    finally:
        proc.communicate("", timeout=30)
    with ws.lock(K1, LockHolder.current(task="next")):  # through the per-key file, like the first process
        assert b'"task":"next"' in (Path(ws.root) / "locks" / "ab" / f"{K1}.lock").read_bytes()
        assert ws.lock_holder(K1).task == "next"


def test_lock_timeout_waits_for_a_killed_holder(tmp_path: Path, mode: str) -> None:
    ws = _workspace(tmp_path, mode, lock_timeout=30)
    holder = _hold(ws, K1)
    killer = threading.Timer(0.5, lambda: holder.send_signal(signal.SIGKILL))
    killer.start()
    try:
        with ws.lock(K1, LockHolder.current(task="waited")):
            assert holder.wait(5) is not None
    finally:
        killer.join()
        holder.wait()


def test_long_names_fit_their_slot(tmp_path: Path) -> None:
    """A key of 200 characters (not hex: placed by its digest) and a very long task name: the note keeps the key,
    host, pid and run whole and shortens the task name to fit the 512-byte slot."""
    ws = _workspace(tmp_path, "slots")
    key = "Long-key." + "x" * 191
    with ws.lock(key, LockHolder.current(run="20261204-231500-abcdef", task="t" * 1000, run_started=1.5)):
        holder = ws.lock_holder(key)
        assert holder is not None and holder.pid == os.getpid() and holder.run == "20261204-231500-abcdef"
        assert holder.run_started == 1.5 and 0 < len(holder.task) < 512 and set(holder.task) == {"t"}
        with pytest.raises(TaskLockedError, match="already running"), ws.lock(key, LockHolder.current()):
            pass
    assert ws.lock_holder(key) is None
    assert [p.name for p in (Path(ws.root) / "locks").iterdir()] != []
    assert not any(p.is_dir() for p in (Path(ws.root) / "locks").iterdir())


def _churn(root: str, marks: str, seed: int, barrier, results) -> None:
    """Take random keys of one slot, over and over; inside each lock, claim the key with an O_EXCL file."""
    import random

    ws = DiskWorkspace(DiskWorkspaceSettings(directory=root))
    rng = random.Random(seed)
    keys = [K1, K2, K3, "abcd" + "f" * 28]
    taken = clashes = busy = 0
    barrier.wait()
    for _ in range(60):
        key = rng.choice(keys)
        try:
            with ws.lock(key, LockHolder.current(task=key[-1])):
                try:
                    fd = os.open(f"{marks}/{key}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    clashes += 1  # another process holds the same key at the same time
                    continue
                os.close(fd)
                taken += 1
                time.sleep(rng.random() * 0.03)  # longer than an acquirer retries (PROBE_GRACE)
                os.unlink(f"{marks}/{key}")
        except TaskLockedError as exc:
            busy += 1
            if exc.holder is not None and exc.holder.task != key[-1]:
                clashes += 1  # refused by a holder of another key
    results.put((taken, clashes, busy))


def test_keys_of_one_slot_under_churn_are_held_once_each(tmp_path: Path, mode: str) -> None:
    """Four processes take four keys sharing one slot at random: a key is never held twice at once, and a process
    that is refused one was refused by a holder of that same key."""
    ws = _workspace(tmp_path, mode)
    marks = tmp_path / "marks"
    marks.mkdir()
    results, barrier = CTX.Queue(), CTX.Barrier(4, timeout=60)
    procs = [CTX.Process(target=_churn, args=(ws.root, str(marks), seed, barrier, results)) for seed in range(4)]
    for p in procs:
        p.start()
    rows = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert sum(clashes for _, clashes, _ in rows) == 0, rows
    assert sum(taken for taken, _, _ in rows) > 0 and sum(busy for _, _, busy in rows) > 0, rows
