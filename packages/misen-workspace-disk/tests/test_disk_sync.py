"""The end of a run flushes what quick tasks wrote without fsync: ``syncfs`` on the workspace's file system, and
``os.sync`` only where ``syncfs`` cannot be used (no such call, a path that cannot be opened, a call that fails)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings, _fs

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs is a Linux system call")


@pytest.fixture
def os_syncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each whole-machine `os.sync` call, counted (the real call still runs)."""
    calls: list[int] = []
    real = os.sync

    def counted() -> None:
        calls.append(1)
        real()

    monkeypatch.setattr(os, "sync", counted)
    return calls


@linux
def test_syncfs_succeeds_on_an_open_folder_and_fails_on_a_closed_descriptor(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        assert _fs._syncfs(fd) == 0
    finally:
        os.close(fd)
    assert _fs._syncfs(fd) != 0  # closed: EBADF, which sync_filesystem answers with os.sync


@linux
def test_sync_filesystem_uses_syncfs_and_not_a_whole_machine_sync(
    tmp_path: Path, os_syncs: list[int]
) -> None:
    (tmp_path / "quick.bin").write_bytes(b"x" * 4096)
    _fs.sync_filesystem(str(tmp_path))
    assert os_syncs == []


def test_sync_filesystem_falls_back_to_os_sync_for_a_path_it_cannot_open(
    tmp_path: Path, os_syncs: list[int]
) -> None:
    _fs.sync_filesystem(str(tmp_path / "gone"))
    assert os_syncs == [1]


def test_sync_filesystem_falls_back_to_os_sync_when_syncfs_fails(
    tmp_path: Path, os_syncs: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[int] = []

    def failing(fd: int) -> int:
        opened.append(fd)
        return -1

    monkeypatch.setattr(_fs, "_syncfs", failing)
    _fs.sync_filesystem(str(tmp_path))
    assert os_syncs == [1]
    assert len(opened) == 1
    with pytest.raises(OSError):  # the descriptor it opened for syncfs was closed again
        os.fstat(opened[0])


@pytest.mark.parametrize("fsync", [True, False])
def test_workspace_sync_flushes_its_own_file_system_only_when_fsync_is_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: bool
) -> None:
    ws = DiskWorkspace(DiskWorkspaceSettings(directory=str(tmp_path / "ws"), fsync=fsync))
    ws.put_record(
        "task", "ab" * 16, {"status": "done"}, durable=False
    )  # a quick task's record: no fsync of its own
    flushed: list[int] = []
    real = _fs._syncfs

    def spy(fd: int) -> int:
        flushed.append(os.fstat(fd).st_ino)
        return real(fd)

    monkeypatch.setattr(_fs, "_syncfs", spy)
    ws.sync()
    assert flushed == ([os.stat(ws.root).st_ino] if fsync else [])
