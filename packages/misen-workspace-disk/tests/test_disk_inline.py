"""Small results kept inside the task's record (`misen.inline`): no folder, the same result hash as a folder,
every byte checked on load, damage found by `run` and by `misen workspace check`, kept and collected by gc."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from misen import InProcessExecutor, Task, cache, inline
from misen.check import check_workspace
from misen.integrity import ResultDamagedError
from misen.runner import run
from misen.serializer import save_result
from misen.testing import tasks as T
from misen_workspace_disk import DiskWorkspace
from misen_workspace_disk._maintenance import apply_gc, plan_gc, workspace_info


def _files(root: Path, area: str) -> list[Path]:
    return [p for p in (root / area).rglob("*") if p.is_file()] if (root / area).exists() else []


@pytest.mark.parametrize(
    "value",
    [0, -7, 3.25, "text", "é\udcff", b"\x00bytes", bytearray(b"ba"), {"loss": 0.1, "acc": [1, 2]}, None],
)
def test_a_small_value_packs_with_the_hash_a_folder_would_have(tmp_path: Path, value: object) -> None:
    packed = inline.pack(value)
    assert packed is not None
    rh, _ = save_result(value, tmp_path / "folder")
    assert packed["result_hash"] == rh
    loaded = inline.load_inline(packed, rh)
    assert loaded == value and type(loaded) is type(value)


def test_a_value_over_the_limit_is_not_packed() -> None:
    assert inline.pack(list(range(inline.INLINE_MAX_BYTES))) is None
    assert inline.pack("x" * (inline.INLINE_MAX_BYTES + 1)) is None
    assert inline.pack(b"x" * (inline.INLINE_MAX_BYTES + 1)) is None
    assert inline.pack("x" * inline.INLINE_MAX_BYTES) is not None


@pytest.mark.parametrize(
    "damage",
    [
        ("data", lambda d: {**d, "data": {"value.pkl": "gAVLFS4="}}),  # another value's bytes
        ("not base64", lambda d: {**d, "data": {"value.pkl": "%%%"}}),
        ("missing file", lambda d: {**d, "data": {}}),
        ("manifest", lambda d: {**d, "manifest": {**d["manifest"], "meta": {"engine": "dill"}}}),
    ],
    ids=lambda p: p[0] if isinstance(p, tuple) else str(p),
)
def test_every_byte_of_an_inline_result_is_checked(damage: tuple[str, object]) -> None:
    packed = inline.pack(20)
    assert packed is not None
    rh = packed["result_hash"]
    broken = damage[1](packed)  # type: ignore[operator]
    with pytest.raises(ResultDamagedError):
        inline.load_inline(broken, rh)
    with pytest.raises(ResultDamagedError):
        inline.verify(packed, "0" * 32)  # sound bytes, but not the result asked for


def test_a_sweep_of_small_results_writes_no_result_folder(workspace: DiskWorkspace) -> None:
    root = Path(workspace.root)
    tasks = [Task(T.add, a=i, b=1) for i in range(40)]
    report = run(tasks, executor=InProcessExecutor(), workspace=workspace)
    assert report.ok
    assert _files(root, "results") == []
    assert cache.statuses(workspace, tasks, check_files=True) == {t.hash: "done" for t in tasks}
    assert [t.result(workspace) for t in tasks] == [i + 1 for i in range(40)]
    # found by its hash alone (a dependency's value), and counted and checked by `workspace check`
    rh = cache.result_hash(workspace, tasks[3])
    assert rh is not None and not workspace.has_result(rh) and cache.load_hash(workspace, rh) == 4
    checked = check_workspace(workspace)
    assert checked.ok and checked.results == 40
    info = workspace_info(workspace)
    assert info["results"] == 0 and info["inline_results"] == 40
    again = run(tasks, executor=InProcessExecutor(), workspace=workspace)
    assert again.ok and all(o.status == "cached" for o in again.outcomes.values())


def test_a_dependent_reads_a_small_dependency_from_the_record(workspace: DiskWorkspace) -> None:
    dep = Task(T.add, a=2, b=3)
    top = Task(T.add, a=dep.T, b=10)
    assert run(dep, executor=InProcessExecutor(), workspace=workspace).ok
    assert run(top, executor=InProcessExecutor(), workspace=workspace).ok
    assert top.result(workspace) == 15


def _damage_record(workspace: DiskWorkspace, task: Task[int]) -> str:
    """Replace the bytes of the task's inline result in its record file (every name of it: one file on disk)."""
    rh = cache.result_hash(workspace, task)
    assert rh is not None
    path = Path(workspace.root) / "records" / "task" / task.hash[:1] / f"{task.hash}.json"
    rec = json.loads(path.read_text())
    rec["inline"]["data"]["value.pkl"] = "gAVLFS4="  # the pickle of 21
    path.write_text(json.dumps(rec))
    return rh


def test_run_heals_a_damaged_inline_result(workspace: DiskWorkspace, tmp_path: Path, capfd) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    dep = Task(T.write_marker, directory=str(marks), name="dep", value=20)
    top = Task(T.add, a=dep.T, b=1)
    assert run(dep, executor=InProcessExecutor(), workspace=workspace).ok
    rh = _damage_record(workspace, dep)
    assert cache.check_stored(workspace, rh) == "checksum mismatch in value.pkl"
    capfd.readouterr()
    assert run(top, executor=InProcessExecutor(), workspace=workspace).ok
    err = capfd.readouterr().err
    assert "was damaged" in err and "recomputing" in err
    assert top.result(workspace) == 21 and dep.result(workspace) == 20
    assert len(list(marks.iterdir())) == 2


def test_workspace_check_finds_and_repairs_a_damaged_inline_result(workspace: DiskWorkspace) -> None:
    tasks = [Task(T.add, a=i, b=100) for i in range(5)]
    assert run(tasks, executor=InProcessExecutor(), workspace=workspace).ok
    rh = _damage_record(workspace, tasks[2])
    found = check_workspace(workspace)
    assert [d.result for d in found.damaged] == [rh]
    assert found.damaged[0].detail == "checksum mismatch in value.pkl"
    repaired = check_workspace(workspace, repair=True)
    assert repaired.damaged[0].repaired
    assert cache.status(workspace, tasks[2]) != "done"
    assert [cache.status(workspace, t) for i, t in enumerate(tasks) if i != 2] == ["done"] * 4
    assert check_workspace(workspace).ok
    assert run(tasks, executor=InProcessExecutor(), workspace=workspace).ok
    assert tasks[2].result(workspace) == 102


def test_a_truncated_record_counts_as_not_cached(workspace: DiskWorkspace) -> None:
    task = Task(T.add, a=1, b=1)
    assert run(task, executor=InProcessExecutor(), workspace=workspace).ok
    path = Path(workspace.root) / "records" / "task" / task.hash[:1] / f"{task.hash}.json"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    assert cache.status(workspace, task) != "done"
    assert run(task, executor=InProcessExecutor(), workspace=workspace).ok
    assert task.result(workspace) == 2


def test_gc_keeps_referenced_inline_results_and_removes_unreachable_ones(workspace: DiskWorkspace) -> None:
    kept, dropped = Task(T.add, a=1, b=2), Task(T.add, a=5, b=5)
    assert run([kept, dropped], executor=InProcessExecutor(), workspace=workspace).ok
    plan = plan_gc(workspace, min_age=0)
    assert plan.results == [] and plan.records == []
    keep = {cache.result_hash(workspace, kept)}
    gone = cache.result_hash(workspace, dropped)
    plan = plan_gc(workspace, keep=keep, min_age=0)  # type: ignore[arg-type]
    assert [r for r, _, _ in plan.results] == [gone]
    apply_gc(workspace, plan)
    assert cache.status(workspace, kept) == "done" and kept.result(workspace) == 3
    assert cache.status(workspace, dropped) == "pending"
    assert workspace.get_record("result", gone or "") is None


def test_a_subclass_that_saves_otherwise_keeps_folders() -> None:
    from misen.stdlib import PickleSerializer

    class Upper(PickleSerializer):  # its own format, but pickle's save_small inherited
        PLUGIN_NAME = "test.upper"

        def save(self, value, directory, ctx):  # type: ignore[no-untyped-def]
            (directory / "value.txt").write_text(str(value).upper())
            return {}

        def load(self, directory, meta, ctx):  # type: ignore[no-untyped-def]
            return (directory / "value.txt").read_text()

    assert inline.pack("abc", Upper()) is None
    assert inline.pack("abc", PickleSerializer()) is not None


def test_early_cutoff_carries_a_small_result_into_the_new_record(workspace: DiskWorkspace) -> None:
    top = Task(T.add, a=Task(T.add, a=2, b=3).T, b=1)
    other = Task(T.add, a=Task(T.add, a=1, b=4).T, b=1)  # another dependency with the same value: 5
    assert run(top, executor=InProcessExecutor(), workspace=workspace).ok
    report = run(other, executor=InProcessExecutor(), workspace=workspace)
    assert report.ok
    assert [o.status for u, o in report.outcomes.items() if report.units[u].root == other] == ["cached"]
    rh = cache.result_hash(workspace, top)
    record = workspace.get_record("task", other.hash)
    assert record is not None and record["result"] == rh and record["inline"]["result_hash"] == rh
    workspace.delete_record("result", rh or "")  # the new record is enough on its own
    assert other.result(workspace) == 6 and cache.status(workspace, other) == "done"
