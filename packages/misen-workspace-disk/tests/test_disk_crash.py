"""Crash safety: a writer killed with SIGKILL at any moment leaves no partial result and no stuck lock."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from misen.serializer import check_result
from misen.workspace import LockHolder
from misen_workspace_disk import DiskWorkspace

SLOW_WRITER = """
from misen import cache
import sys, time
from misen.serializer import Serializer
from misen.workspace import LockHolder
from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings

class Slow(Serializer):
    PLUGIN_NAME = "slow-test"
    def save(self, value, directory, ctx):
        with open(directory / "data.bin", "wb") as f:
            for i in range(1000):
                f.write(b"x" * 65536)
                f.flush()
                if i == 3:
                    print("saving", flush=True)
                time.sleep(0.01)
        return {}

ws = DiskWorkspace(DiskWorkspaceSettings(directory=sys.argv[1]))
with ws.lock(sys.argv[2], LockHolder.current(task="slow")):
    h = cache.store(ws, b"", serializer=Slow())
    ws.put_record("task", sys.argv[2], {"result": h})
print("finished", flush=True)
"""


def test_kill_during_save(workspace: DiskWorkspace) -> None:
    key = "aa" * 16
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, workspace.root, key], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "saving"
    assert workspace.lock_holder(key) is not None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(workspace.iter_results()) == []
    assert workspace.get_record("task", key) is None
    assert workspace.lock_holder(key) is None
    with workspace.lock(key, LockHolder.current()):
        pass
    tmp = Path(workspace.root) / "tmp"
    leftovers = list(tmp.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(f"stage-{proc.pid}-")
    # a dead writer's staging directory goes at this process's first store, whatever its age; ours stays
    with workspace.staging_dir() as mine:
        assert not leftovers[0].exists()
        assert workspace.sweep_tmp(older_than=0) == []
        assert mine.exists()
    assert list(tmp.iterdir()) == []


LOOP_WRITER = """
from misen import cache
import os, sys
from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
ws = DiskWorkspace(DiskWorkspaceSettings(directory=sys.argv[1]))
i = int(sys.argv[2])
print("start", flush=True)
while True:
    value = os.urandom(64) * (1 + (i % 7) * 4096)
    h = cache.store(ws, value)
    ws.put_record("task", f"{i:032x}", {"result": h})
    i += 1
"""


def test_kill_at_random_moments_leaves_only_complete_results(workspace: DiskWorkspace) -> None:
    rng = random.Random(1234)
    start = 0
    for _ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", LOOP_WRITER, workspace.root, str(start)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "start"
        time.sleep(rng.uniform(0.02, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        start += 10_000
    results = list(workspace.iter_results())
    assert results, "the writer never committed anything; the test proves nothing"
    for h in results:
        manifest = check_result(workspace.open_result(h), full=True)
        assert manifest["result_hash"] == h
    keys = list(workspace.iter_records("task"))
    assert keys
    for key in keys:
        rec = workspace.get_record("task", key)
        assert rec is not None and workspace.has_result(rec["result"])
    # leftovers are only in tmp/ (and half-written record files), never in results/ or as visible records
    swept = workspace.sweep_tmp(older_than=0)
    assert all("/tmp/" in p or p.endswith(".tmp") for p, _ in swept)
    assert list((Path(workspace.root) / "tmp").iterdir()) == []
