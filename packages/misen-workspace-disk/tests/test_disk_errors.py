"""Permission errors and full disks end in one clear message naming the path, and leave nothing half written."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from misen import cache
from misen.errors import MisenError
from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings, WorkspaceStorageError


def _mount(args: list[str]) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (root only)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or not _mount(["-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)]):
        pytest.skip("cannot mount a tmpfs here (needs root); the RLIMIT_FSIZE test covers full disks")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_full_disk_while_storing_a_result(small_disk: Path) -> None:
    ws = DiskWorkspace(DiskWorkspaceSettings(directory=str(small_disk / "ws")))
    ws.put_record("task", "aa" * 16, {"result": "none"})
    before = _files(small_disk)
    with pytest.raises(WorkspaceStorageError, match="disk is full") as info:
        cache.store(ws, os.urandom(3 * 1024 * 1024))
    assert str(small_disk / "ws" / "tmp") in str(info.value)
    assert isinstance(info.value, MisenError) and isinstance(info.value, OSError)
    assert list(ws.iter_results()) == []
    assert _files(small_disk) == before  # staging removed, nothing else touched
    # the workspace still works once the value fits
    h = cache.store(ws, b"small")
    assert cache.load_hash(ws, h) == b"small"


def test_full_disk_while_writing_a_record(small_disk: Path) -> None:
    ws = DiskWorkspace(DiskWorkspaceSettings(directory=str(small_disk / "ws")))
    ws.put_record("task", "bb" * 16, {"result": "old"})
    filler = small_disk / "filler"
    with pytest.raises(OSError), open(filler, "wb", buffering=0) as f:
        while True:
            f.write(b"\0" * 65536)
    with pytest.raises(WorkspaceStorageError, match="disk is full") as info:
        ws.put_record("task", "bb" * 16, {"result": "new", "pad": "x" * 100_000})
    assert "records/task/b/" + "bb" * 16 in str(info.value)
    assert ws.get_record("task", "bb" * 16) == {"result": "old"}
    assert [p for p in _files(small_disk) if p.endswith(".tmp")] == []


FSIZE_WRITER = """
from misen import cache
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
ws = DiskWorkspace(DiskWorkspaceSettings(directory=sys.argv[1]))
resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, 1024 * 1024))
try:
    cache.store(ws, b"x" * (4 * 1024 * 1024))
except Exception as exc:
    print(type(exc).__name__, exc)
    sys.exit(3)
"""


def test_file_size_limit_reads_as_full_disk(workspace: DiskWorkspace, python) -> None:
    proc = python(FSIZE_WRITER, workspace.root)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.startswith("WorkspaceStorageError") and "size/quota limit" in proc.stdout
    assert workspace.root in proc.stdout
    assert list(workspace.iter_results()) == []
    assert list((Path(workspace.root) / "tmp").iterdir()) == []


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="misen-disk-perm-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


AS_NOBODY = """
from misen import cache
import os, sys
from misen.workspace import LockHolder
from misen.serializer import _load_tables
from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings
_load_tables()  # the interpreter's own files may be unreadable to nobody: import everything first
ws = DiskWorkspace(DiskWorkspaceSettings(directory=sys.argv[1]))
ws.lock_holder("dd" * 16)
os.setgid(65534); os.setuid(65534)
print("read", ws.get_record("task", "cc" * 16))
for what, act in [
    ("record", lambda: ws.put_record("task", "dd" * 16, {})),
    ("result", lambda: cache.store(ws, b"v")),
    ("lock", lambda: ws.lock("dd" * 16, LockHolder.current()).__enter__()),
    ("workdir", lambda: ws.work_dir("dd" * 16)),
]:
    try:
        act()
        print(what, "no error")
    except Exception as exc:
        print(what, type(exc).__name__, exc)
"""


def test_permission_denied(shared_dir: Path, python) -> None:
    if os.geteuid() != 0:
        pytest.skip("switching to another user needs root")
    ws = DiskWorkspace(DiskWorkspaceSettings(directory=str(shared_dir / "ws")))
    ws.put_record("task", "cc" * 16, {"result": "r"})
    for area in ("results", "tmp", "locks", "work"):
        (shared_dir / "ws" / area).mkdir()
    proc = python(AS_NOBODY, ws.root, cwd=shared_dir)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines["read"] == "{'result': 'r'}"
    for what in ("record", "result", "lock", "workdir"):
        assert lines[what].startswith("WorkspaceStorageError"), lines[what]
        assert "permission denied" in lines[what] and ws.root in lines[what]
    assert _files(shared_dir / "ws") == ["records/task/c/" + "cc" * 16 + ".json"]


@pytest.fixture
def read_only_workspace(shared_dir: Path) -> Iterator[DiskWorkspace]:
    src = shared_dir / "ws"
    ws = DiskWorkspace(DiskWorkspaceSettings(directory=str(src)))
    ws.put_record("task", "ee" * 16, {"result": "r"})
    h = cache.store(ws, b"stored")
    ws.put_record("task", "ee" * 16, {"result": h})
    if os.geteuid() != 0 or not (
        _mount(["--bind", str(src), str(src)]) and _mount(["-o", "remount,bind,ro", str(src)])
    ):
        subprocess.run(["umount", str(src)], check=False)
        pytest.skip("cannot make a read-only bind mount here (needs root)")
    try:
        yield ws
    finally:
        subprocess.run(["umount", str(src)], check=False)


def test_read_only_file_system(read_only_workspace: DiskWorkspace) -> None:
    ws = read_only_workspace
    rec = ws.get_record("task", "ee" * 16)
    assert rec is not None and cache.load_hash(ws, rec["result"]) == b"stored"
    with pytest.raises(WorkspaceStorageError, match="read-only") as info:
        ws.put_record("task", "ff" * 16, {})
    assert ws.root in str(info.value)
    with pytest.raises(WorkspaceStorageError, match="read-only"):
        cache.store(ws, b"new")


def test_directory_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    ws = DiskWorkspace(DiskWorkspaceSettings(directory=str(tmp_path / "afile" / "ws")))
    assert ws.get_record("task", "abc") is None  # a query is just "not there"
    with pytest.raises(WorkspaceStorageError, match="afile"):
        ws.put_record("task", "abc", {})
    with pytest.raises(WorkspaceStorageError, match="afile"):
        cache.store(ws, 1)
