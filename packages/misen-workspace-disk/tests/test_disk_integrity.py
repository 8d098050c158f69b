"""Every byte of a stored result is checked before it is trusted, at any size; loader failures are damage."""

from __future__ import annotations

import json
import os
import pickle
import socket
import threading
from pathlib import Path

import pytest
from misen import cache
from misen.errors import NotCachedError, ResultCorruptedError
from misen.integrity import VERIFIED, ResultDamagedError
from misen.serializer import file_digest, load_result
from misen.storable import UnstorableValueError
from misen_workspace_disk import DiskWorkspace

try:
    import numpy as np
except ImportError:  # the workspace-disk tox environment has no NumPy: its cases skip, the rest run
    np = None

needs_numpy = pytest.mark.skipif(np is None, reason="needs numpy (and misen-serializers-numpy)")

MIB = 1024 * 1024


def _linked(workspace: DiskWorkspace, value: object, tag: str):
    from misen import Task, meta

    @meta(id="DISKINTEG01", cache=True)
    def produce(tag: str) -> object:
        return value

    task = Task(produce, tag=tag)
    h = cache.store(workspace, value)
    cache.link(workspace, task, resolved="r" + task.hash[1:], result=h)
    return task, h


def _flip_keeping_mtime(path: Path, offset: int) -> None:
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # a careless copy tool or a bit flip: same size, same time


@needs_numpy
def test_a_flipped_byte_in_an_80_mib_array_is_detected(workspace: DiskWorkspace) -> None:
    big = np.arange(80 * MIB // 8, dtype=np.float64)
    task, h = _linked(workspace, big, "big")
    loaded = cache.load(workspace, task)
    assert float(loaded[-1]) == float(big[-1])
    del loaded
    path = workspace.open_result(h)
    assert (path / VERIFIED).is_file()  # verified once, recorded
    _flip_keeping_mtime(path / "array.npy", path.joinpath("array.npy").stat().st_size - 3)
    with pytest.raises(ResultDamagedError) as info:
        load_result(path)
    assert info.value.kind == "checksum" and info.value.file == "array.npy"
    assert "checksum mismatch in array.npy" in str(info.value) and str(path) in str(info.value)
    with pytest.raises(NotCachedError, match="damaged"):
        cache.load(workspace, task)


def test_a_large_file_is_checksummed_again_once_it_changed(workspace: DiskWorkspace) -> None:
    value = os.urandom(MIB) * 70  # a 70 MiB bytes value: above the always-checked size
    task, h = _linked(workspace, value, "bytes")
    path = workspace.open_result(h)
    recorded = (path / VERIFIED).read_text()  # the store recorded the digest of the bytes it wrote
    victim = next(p for p in path.iterdir() if p.is_file() and p.name not in ("manifest.json", VERIFIED))
    _flip_keeping_mtime(victim, 12345)
    with pytest.raises(NotCachedError, match="damaged"):
        cache.load(workspace, task)
    assert (path / VERIFIED).read_text() == recorded  # a failed check records nothing
    (path / VERIFIED).unlink()  # no record at all: the first load checksums every byte
    with pytest.raises(ResultDamagedError, match="checksum mismatch"):
        load_result(path)


@needs_numpy
def test_a_verification_record_counts_only_for_the_exact_file(workspace: DiskWorkspace) -> None:
    big = np.ones(70 * MIB // 8)
    task, h = _linked(workspace, big, "record")
    cache.load(workspace, task)
    path = workspace.open_result(h)
    record = json.loads((path / VERIFIED).read_text())
    st = (path / "array.npy").stat()
    size, ino, mtime_ns, ctime_ns, digest = record["array.npy"]
    assert (size, ino, mtime_ns, ctime_ns) == (st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
    assert digest == file_digest(path / "array.npy")
    # a forged record for a changed file does not help: the change time moved with the write
    _flip_keeping_mtime(path / "array.npy", 4096)
    with pytest.raises(ResultDamagedError, match=r"checksum mismatch in array\.npy"):
        load_result(path)


def _rewrite_with_manifest(path: Path, rel: str, data: bytes) -> None:
    """Damage that passes the checksums: the file and its manifest entry changed together."""
    (path / rel).write_bytes(data)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"][rel] = {"size": len(data), "xxh3": file_digest(path / rel)}
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("make", "rel", "data", "error"),
    [
        (lambda: {"a": 1}, "value.pkl", b"\x80\x05garbage", "UnpicklingError"),
        pytest.param(
            lambda: np.arange(1000.0),
            "array.npy",
            b"\x93NUMPY\x01\x00\x10\x00{'nope': 1}    \n" + b"\0" * 64,
            "ValueError",
            marks=needs_numpy,
        ),
        (lambda: "text " * 100, "value.txt", b"\xff\xfe\xfa not utf-8", "UnicodeDecodeError"),
    ],
    ids=["pickle", "npy-header", "text"],
)
def test_a_loader_failure_is_damage_naming_the_file(
    workspace: DiskWorkspace, make, rel: str, data: bytes, error: str
) -> None:
    value = make()
    task, h = _linked(workspace, value, rel)
    path = workspace.open_result(h)
    assert (path / rel).is_file(), sorted(p.name for p in path.iterdir())
    _rewrite_with_manifest(path, rel, data)
    with pytest.raises(ResultDamagedError) as info:
        load_result(path)
    assert info.value.kind == "unreadable" and info.value.file == rel
    assert error in str(info.value) and rel in str(info.value)
    assert isinstance(info.value, ResultCorruptedError)
    with pytest.raises(NotCachedError, match="damaged"):
        cache.load(workspace, task)


def test_damage_reports_survive_pickling(tmp_path: Path) -> None:
    err = ResultDamagedError(tmp_path, "value.pkl", "checksum", "checksum mismatch in value.pkl")
    again = pickle.loads(pickle.dumps(err))
    assert (again.file, again.kind, str(again)) == ("value.pkl", "checksum", str(err))
    assert again.short == "checksum mismatch in value.pkl"


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda tmp: open(tmp / "f", "w"), "file object"),
        (lambda tmp: socket.socket(), "socket"),
        (lambda tmp: threading.Lock(), "lock"),
        (lambda tmp: (i for i in range(3)), "generator"),
        (lambda tmp: {"worker": [threading.Thread(target=print)]}, "thread"),
        (lambda tmp: [lambda: 1, open(tmp / "g", "w")], "file object"),  # dill would otherwise take it
    ],
    ids=["file", "socket", "lock", "generator", "thread-in-a-dict", "file-beside-a-lambda"],
)
def test_values_that_cannot_be_stored_are_refused_naming_the_type(
    workspace: DiskWorkspace, tmp_path: Path, make, kind: str
) -> None:
    value = make(tmp_path)
    try:
        with pytest.raises(UnstorableValueError, match=f"cannot store a result of type .*{kind}"):
            cache.store(workspace, value)
    finally:
        for obj in value if isinstance(value, list) else [value]:
            if hasattr(obj, "close"):
                obj.close()
    assert list(workspace.iter_results()) == []
    assert list((Path(workspace.root) / "tmp").iterdir()) == []


def test_in_memory_files_are_still_stored(workspace: DiskWorkspace) -> None:
    import io

    h = cache.store(workspace, {"buf": io.BytesIO(b"abc")})
    assert cache.load_hash(workspace, h)["buf"].getvalue() == b"abc"
