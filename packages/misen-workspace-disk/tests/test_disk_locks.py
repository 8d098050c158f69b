"""Task locks between real processes: one winner, the holder named, killed holders recovered."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from misen.errors import TaskLockedError
from misen.workspace import LockHolder
from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings

CTX = multiprocessing.get_context("fork")
TRIALS = 50


def test_two_processes_race_for_one_lock(tmp_path: Path, lock_race) -> None:  # type: ignore[no-untyped-def]
    by_trial = lock_race(str(tmp_path / "ws"), None, TRIALS)
    for i, pair in by_trial.items():
        message = next(what for _, what, _ in pair if what != "won")
        assert socket.gethostname() in message and f"t{i}" in message


HOLD = """
import sys, time
from misen.workspace import LockHolder
from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
ws = DiskWorkspace(DiskWorkspaceSettings(directory=sys.argv[1]))
with ws.lock(sys.argv[2], LockHolder.current(task="holder-task")):
    print("locked", flush=True)
    time.sleep(600)
"""


def _start_holder(root: str, key: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, root, key], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_holder_seen_and_killed_holder_recovered(workspace: DiskWorkspace) -> None:
    key = "ab" * 16
    proc = _start_holder(workspace.root, key)
    try:
        holder = workspace.lock_holder(key)
        assert holder is not None and holder.pid == proc.pid and holder.task == "holder-task"
        with pytest.raises(TaskLockedError, match=f"pid {proc.pid}") as info:
            with workspace.lock(key, LockHolder.current()):
                pytest.fail("took a lock another process holds")
        assert "holder-task" in str(info.value)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the holder note is still in the key's slot of the shared lock file, but the dead process holds no lock
    assert b"holder-task" in (Path(workspace.root) / "locks" / f"{key[:1]}.lock").read_bytes()
    assert workspace.lock_holder(key) is None
    with workspace.lock(key, LockHolder.current(task="second")):
        assert workspace.lock_holder(key).pid == os.getpid()
    assert workspace.lock_holder(key) is None


def test_stale_holder_note_never_blocks(workspace: DiskWorkspace) -> None:
    key = "cd" * 16
    note = Path(workspace.root) / "locks" / key[:2] / f"{key}.lock"
    note.parent.mkdir(parents=True)
    # a live pid on this host (our own), as after a crash on a shared file system: only the flock counts
    note.write_text(json.dumps(LockHolder.current(task="ghost").as_dict()))
    assert workspace.lock_holder(key) is None
    with workspace.lock(key, LockHolder.current(task="real")):
        assert workspace.lock_holder(key).task == "real"
    # a note from another host, in a lock file nobody holds
    note.write_text(json.dumps({"host": "elsewhere", "pid": 1, "since": time.time()}))
    assert workspace.lock_holder(key) is None
    with workspace.lock(key, LockHolder.current()):
        pass


def test_same_process_second_lock_fails(workspace: DiskWorkspace) -> None:
    key = "ef" * 16
    with workspace.lock(key, LockHolder.current(task="first")):
        with pytest.raises(TaskLockedError, match="first"), workspace.lock(key, LockHolder.current()):
            pass
    with workspace.lock(key, LockHolder.current()):
        pass


def test_lock_timeout_waits_for_release(tmp_path: Path) -> None:
    ws = DiskWorkspace(DiskWorkspaceSettings(directory=str(tmp_path / "ws"), lock_timeout=30))
    key = "12" * 16
    proc = _start_holder(ws.root, key)
    try:
        killer = CTX.Process(target=_kill_later, args=(proc.pid, 0.5))
        killer.start()
        with ws.lock(key, LockHolder.current()):
            assert proc.poll() is not None or proc.wait(5) is not None
        killer.join()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _kill_later(pid: int, delay: float) -> None:
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)


def test_task_is_running_sees_another_process(workspace: DiskWorkspace) -> None:
    from misen import Task, meta

    @meta(id="DISKLOCK01", cache=True)
    def work(x: int) -> int:
        return x

    task = Task(work, x=1)
    assert task.is_running(workspace=workspace) is False
    proc = _start_holder(workspace.root, task.hash)
    try:
        assert task.is_running(workspace=workspace) is True
        assert Task(work, x=2).is_running(workspace=workspace) is False
    finally:
        proc.kill()
        proc.wait()
    assert task.is_running(workspace=workspace) is False



def test_a_lock_file_unlinked_under_an_acquirer_is_not_taken(tmp_path: Path) -> None:
    """`misen gc` unlinks idle lock files: an acquirer that opened the old file just before must not count that
    file's flock as the lock, since a later process locks the new file at the path."""
    from misen_workspace_disk._locks import _try_lock

    path = tmp_path / "ab.lock"
    old = os.open(path, os.O_RDWR | os.O_CREAT)
    os.unlink(path)
    new = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        assert _try_lock(old, str(path)) is None
        assert _try_lock(new, str(path)) is True
        other = os.open(path, os.O_RDWR)
        try:
            assert _try_lock(other, str(path)) is False
        finally:
            os.close(other)
    finally:
        os.close(old)
        os.close(new)


def test_a_forked_child_does_not_keep_the_lock(workspace: DiskWorkspace) -> None:
    """A task that forks (a multiprocessing pool) and leaves the child running: the lock is free once the task
    lets go of it, not once the child exits."""
    key = "ef" * 16
    with workspace.lock(key, LockHolder.current(task="forks")):
        pid = os.fork()
        if pid == 0:  # the child outlives the lock's holder
            time.sleep(60)
            os._exit(0)
    try:
        with workspace.lock(key, LockHolder.current(task="next")):
            assert workspace.lock_holder(key).task == "next"
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
