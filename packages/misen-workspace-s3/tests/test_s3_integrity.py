"""The S3 workspace: every byte of a local copy is checked at any size, and a crashed writer's staging folder is
reclaimed by the next process's first store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from misen import cache
from misen_workspace_s3 import S3Workspace

MIB = 1024 * 1024


def test_a_flipped_byte_in_a_large_local_copy_is_never_returned(
    make_ws: Callable[..., S3Workspace], backend: str
) -> None:
    if backend == "file":
        pytest.skip("a file:// store is served in place: the disk workspace's tests cover it")
    writer, reader = make_ws(), make_ws()
    value = os.urandom(MIB) * 70  # above the size checksummed on every load
    h = cache.store(writer, value)
    assert cache.load_hash(reader, h) == value
    local = reader.open_result(h)
    assert local is not None
    victim = next(p for p in local.iterdir() if p.is_file() and not p.name.startswith((".", "manifest")))
    st = victim.stat()
    with open(victim, "r+b") as f:
        f.seek(40 * MIB)
        byte = f.read(1)
        f.seek(40 * MIB)
        f.write(bytes([byte[0] ^ 0xFF]))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.load_hash(reader, h) == value  # the damaged copy was found, dropped and fetched again


CRASH = """
import os, signal, sys
from misen_workspace_s3 import S3Workspace
ws = S3Workspace(url=sys.argv[1], endpoint_url=sys.argv[2], cache_dir=sys.argv[3])
with ws.staging_dir() as staged:
    (staged / "half.bin").write_bytes(b"x" * 100_000)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_crashed_writers_staging_folder_goes_at_the_next_first_store(
    store_url: tuple[str, str], backend: str, tmp_path: Path
) -> None:
    if backend == "memory":
        pytest.skip("memory:// lives in one process")
    url, endpoint = store_url
    cache_dir = tmp_path / "cache"
    proc = subprocess.run([sys.executable, "-c", CRASH, url, endpoint, str(cache_dir)], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    leftovers = list((cache_dir / "staging").iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith("stage-"), leftovers
    ws = S3Workspace(url=url, endpoint_url=endpoint, cache_dir=str(cache_dir))
    try:
        cache.store(ws, b"next run")
        assert list((cache_dir / "staging").iterdir()) == []
    finally:
        ws.close()


def test_workspace_check_finds_and_drops_a_damaged_stored_result(
    make_ws: Callable[..., S3Workspace], backend: str
) -> None:
    from misen import Task, meta
    from misen.check import check_workspace

    @meta(id="S3CHECK01", cache=True)
    def produce(tag: str) -> object:
        return tag

    ws = make_ws()
    good, bad = Task(produce, tag="good"), Task(produce, tag="bad")
    kept, damaged = cache.store(ws, list(range(100))), cache.store(ws, list(range(200)))
    cache.link(ws, good, resolved="r" + good.hash[1:], result=kept, provenance={})
    cache.link(ws, bad, resolved="r" + bad.hash[1:], result=damaged, provenance={})
    victim = next(e["name"] for e in ws.remote.find(f"results/{damaged}") if not e["name"].endswith("manifest.json"))
    ws.remote.delete(victim)  # a data object lost in the store
    fresh = make_ws()  # another machine: no local copy to hide the damage
    report = check_workspace(fresh)
    assert [d.result for d in report.damaged] == [damaged] and report.results == 2
    assert {(kind, result) for kind, _, result in report.dangling} == {("task", damaged), ("key", damaged), ("resolved", damaged)}
    check_workspace(fresh, repair=True)
    assert not fresh.has_result(damaged) and fresh.has_result(kept)
    assert fresh.get_record("task", bad.hash) is None and fresh.get_record("task", good.hash) is not None
    assert check_workspace(make_ws()).ok
