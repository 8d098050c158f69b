"""Results: atomic commits, content addressing, damage detected on load, large values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from misen import cache
from misen.errors import NotCachedError, ResultCorruptedError
from misen.serializer import check_result, load_result, save_result
from misen_workspace_disk import DiskWorkspace


def test_store_and_load(workspace: DiskWorkspace) -> None:
    value = {"a": [1, 2, 3], "b": "x" * 1000}
    h = cache.store(workspace, value)
    assert workspace.has_result(h)
    assert cache.load_hash(workspace, h) == value
    path = workspace.open_result(h)
    assert path == Path(workspace.root) / "results" / h[:2] / h
    assert (path / "manifest.json").is_file()
    assert list(workspace.iter_results()) == [h]
    # staging leaves nothing behind
    assert list((Path(workspace.root) / "tmp").iterdir()) == []


def test_equal_results_are_stored_once(workspace: DiskWorkspace) -> None:
    h1 = cache.store(workspace, [1, 2, 3])
    h2 = cache.store(workspace, [1, 2, 3])
    assert h1 == h2
    assert list(workspace.iter_results()) == [h1]
    # committing a second staged copy keeps the first and discards the copy
    stored = workspace.open_result(h1)
    inode = os.stat(stored / "manifest.json").st_ino
    with workspace.staging_dir() as staged:
        h3, _ = save_result([1, 2, 3], staged / "r")
        assert h3 == h1
        workspace.commit_result(h3, staged / "r")
        assert not (staged / "r").exists()
    assert os.stat(stored / "manifest.json").st_ino == inode


def test_commit_is_a_rename(workspace: DiskWorkspace) -> None:
    with workspace.staging_dir() as staged:
        h, _ = save_result(b"z" * 4096, staged / "r")
        inode = os.stat(_only_dir_file(staged / "r")).st_ino
        workspace.commit_result(h, staged / "r")
    assert os.stat(_only_dir_file(workspace.open_result(h))).st_ino == inode


def _only_dir_file(path: Path) -> Path:
    return next(p for p in path.iterdir() if p.name != "manifest.json" and not p.name.startswith("."))


def test_staging_dir_removed_on_error(workspace: DiskWorkspace) -> None:
    with pytest.raises(RuntimeError), workspace.staging_dir() as staged:
        (staged / "half").write_bytes(b"x")
        raise RuntimeError("serializer failed")
    assert not staged.exists()
    assert list(workspace.iter_results()) == []


def test_commit_refuses_an_incomplete_directory(workspace: DiskWorkspace) -> None:
    from misen.errors import MisenError

    with workspace.staging_dir() as staged, pytest.raises(MisenError, match="not a complete result"):
        (staged / "r").mkdir()
        workspace.commit_result("0" * 32, staged / "r")
    assert not workspace.has_result("0" * 32)


def test_delete_result(workspace: DiskWorkspace) -> None:
    h = cache.store(workspace, "value")
    workspace.delete_result(h)
    assert not workspace.has_result(h)
    assert list(workspace.iter_results()) == []
    workspace.delete_result(h)  # already gone: fine
    assert list((Path(workspace.root) / "tmp").iterdir()) == []


def _linked_task(workspace: DiskWorkspace, value: object):
    from misen import Task, meta

    @meta(id="DISKRES001", cache=True)
    def produce(n: int) -> object:
        return value

    task = Task(produce, n=len(str(value)))
    h = cache.store(workspace, value)
    cache.link(workspace, task, resolved="r" + task.hash[1:], result=h)
    return task, h


@pytest.mark.parametrize("damage", ["flip", "truncate", "manifest", "missing"])
def test_damaged_result_reads_as_not_cached(workspace: DiskWorkspace, damage: str) -> None:
    task, h = _linked_task(workspace, list(range(20000)))
    assert cache.load(workspace, task) == list(range(20000))
    path = workspace.open_result(h)
    data_file = _only_dir_file(path)
    if damage == "flip":
        raw = bytearray(data_file.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        data_file.write_bytes(bytes(raw))
    elif damage == "truncate":
        with open(data_file, "r+b") as f:
            f.truncate(100)
    elif damage == "manifest":
        (path / "manifest.json").write_text('{"files": {')
    else:
        data_file.unlink()
    with pytest.raises(ResultCorruptedError):
        load_result(path)
    with pytest.raises(NotCachedError, match="damaged"):
        cache.load(workspace, task)


def test_large_value_round_trip(workspace: DiskWorkspace) -> None:
    # above FULL_CHECK_BYTES, so the load checks sizes only; a truncation is still caught
    from misen.serializer import FULL_CHECK_BYTES

    value = os.urandom(1024) * ((FULL_CHECK_BYTES + 4 * 1024 * 1024) // 1024)
    task, h = _linked_task(workspace, value)
    loaded = cache.load(workspace, task)
    assert len(loaded) == len(value) and loaded == value
    del loaded
    check_result(workspace.open_result(h), full=True)
    with open(_only_dir_file(workspace.open_result(h)), "r+b") as f:
        f.truncate(len(value) - 1)
    with pytest.raises(NotCachedError):
        cache.load(workspace, task)


def test_commit_from_another_file_system(workspace: DiskWorkspace, tmp_path: Path) -> None:
    import tempfile

    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another file system")
    with tempfile.TemporaryDirectory(dir=shm) as other:
        h, _ = save_result({"far": 1}, Path(other) / "r")
        workspace.commit_result(h, Path(other) / "r")
    assert cache.load_hash(workspace, h) == {"far": 1}
    assert list((Path(workspace.root) / "tmp").iterdir()) == []
