"""The result format: checksums, the older format's manifests, and durability left to `Workspace.sync`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from misen import cache
from misen.errors import ResultCorruptedError
from misen.serializer import check_result, file_digest, load_result, save_result


def test_manifest_records_xxh3_of_every_file(tmp_path: Path) -> None:
    value = {"a": list(range(1000)), "b": "x" * 5000}
    result_hash, manifest = save_result(value, tmp_path / "r")
    assert manifest["format"] == 2
    for rel, info in manifest["files"].items():
        assert info["xxh3"] == file_digest(tmp_path / "r" / rel)
        assert info["size"] == (tmp_path / "r" / rel).stat().st_size
    assert load_result(tmp_path / "r") == value
    again, _ = save_result(value, tmp_path / "again", durable=False)
    assert again == result_hash  # durability changes when bytes reach the disk, never what they are


def test_format_1_manifests_with_blake2b_still_load_and_are_checked(tmp_path: Path) -> None:
    d = tmp_path / "old"
    save_result([1, 2, 3], d)
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["format"] = 1
    for rel, info in manifest["files"].items():
        info.pop("xxh3")
        info["blake2b"] = hashlib.blake2b((d / rel).read_bytes(), digest_size=16).hexdigest()
    (d / "manifest.json").write_text(json.dumps(manifest))
    assert load_result(d) == [1, 2, 3]
    victim = d / next(iter(manifest["files"]))
    data = bytearray(victim.read_bytes())
    data[-2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(ResultCorruptedError, match="checksum"):
        check_result(d)


def test_a_manifest_without_any_checksum_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "bare"
    save_result("text", d)
    manifest = json.loads((d / "manifest.json").read_text())
    for info in manifest["files"].values():
        info.pop("xxh3")
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ResultCorruptedError):
        load_result(d)


def test_quick_results_are_flushed_by_sync_at_the_end_of_a_run(tmp_path: Path) -> None:
    from misen import InProcessExecutor, MemoryWorkspace, Task
    from misen.runner import run
    from misen.testing import tasks as T

    calls: list[str] = []

    class Recording(MemoryWorkspace):
        def put_record(self, kind, key, value, *, durable=True):  # type: ignore[no-untyped-def]
            calls.append(f"{kind}:{durable}")
            super().put_record(kind, key, value, durable=durable)

        def sync(self) -> None:
            calls.append("sync")

    ws = Recording()
    assert run(Task(T.add, a=40, b=2), executor=InProcessExecutor(), workspace=ws).ok
    assert "task:False" in calls and calls[-1] == "sync"
    calls.clear()
    assert run(Task(T.slow_value, seconds=1.1, value=1), executor=InProcessExecutor(), workspace=ws).ok
    assert "task:True" in calls  # a result that took a while is durable before it is published


@pytest.mark.parametrize("kept", ["folder", "record"])
def test_a_damaged_dependency_is_dropped_and_recomputed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, kept: str
) -> None:
    from misen import InProcessExecutor, MemoryWorkspace, Task, inline
    from misen.runner import run
    from misen.testing import tasks as T

    if kept == "folder":
        monkeypatch.setattr(inline, "INLINE_MAX_BYTES", 0)  # the small value gets a folder of its own
    ws = MemoryWorkspace()
    marks = tmp_path / "marks"
    marks.mkdir()
    dep = Task(T.write_marker, directory=str(marks), name="dep", value=20)
    top = Task(T.add, a=dep.T, b=1)
    assert run(dep, executor=InProcessExecutor(), workspace=ws).ok
    rh = cache.result_hash(ws, dep) or ""
    stored = ws.open_result(rh)
    if kept == "folder":
        assert stored is not None
        for f in stored.iterdir():
            if f.name != "manifest.json":
                f.write_bytes(b"garbage")
    else:
        # A small result is kept in the task's record: no folder, and its bytes damaged in every copy of it (the
        # record's four names are one file on disk; this workspace keeps a copy under each). An intact copy would
        # be reused, as early cutoff reuses a checked result.
        assert stored is None
        first = ws.get_record("task", dep.hash)
        assert first is not None
        for kind, key in (("task", dep.hash), ("result", rh), ("resolved", first["resolved"]), ("key", dep.key_hash)):
            rec = ws.get_record(kind, key)
            assert rec is not None and rec["inline"]["result_hash"] == rh
            rec["inline"] = {**rec["inline"], "data": {"value.pkl": "gAVLFS4="}}  # pickle of 21, not 20
            ws.put_record(kind, key, rec)
    capfd.readouterr()
    # The run finds the damage before it relies on the result: one line, and the dependency is computed again.
    report = run(top, executor=InProcessExecutor(), workspace=ws)
    assert report.ok
    err = capfd.readouterr().err
    assert "result of Task(write_marker" in err and "was damaged" in err and "recomputing" in err
    assert top.result(ws) == 21
    assert len(list(marks.iterdir())) == 2
