"""The contract suites: what misen relies on from every workspace, executor and serializer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import misen.testing.tasks as T
from misen import cache
from misen._builtin.memory import MemoryWorkspace
from misen.errors import NotCachedError, ResultCorruptedError, TaskLockedError
from misen.executor import Executor
from misen.inline import INLINE_MAX_BYTES, load_inline, pack
from misen.reporting import PlainReporter
from misen.runner import run
from misen.serializer import Serializer, load_result, read_manifest, save_result, serializer_for
from misen.tasklog import task_logs
from misen.tasks import Task
from misen.workspace import LockHolder, Workspace

__all__ = ["ExecutorContract", "SerializerContract", "WorkspaceContract"]


class WorkspaceContract:
    """Subclass and provide a ``workspace`` fixture returning a fresh, empty workspace."""

    @pytest.fixture
    def workspace(self) -> Workspace:
        raise NotImplementedError("provide a `workspace` fixture")

    def test_records_round_trip(self, workspace: Workspace) -> None:
        assert workspace.get_record("task", "k1") is None
        workspace.put_record("task", "k1", {"a": 1, "b": [1, 2]})
        assert workspace.get_record("task", "k1") == {"a": 1, "b": [1, 2]}
        workspace.put_record("task", "k1", {"a": 2})
        assert workspace.get_record("task", "k1") == {"a": 2}
        workspace.put_record("task", "k2", {"x": None})
        assert sorted(workspace.iter_records("task")) == ["k1", "k2"]
        assert workspace.get_records("task", ["k1", "missing"]) == {"k1": {"a": 2}}
        workspace.delete_record("task", "k1")
        assert workspace.get_record("task", "k1") is None
        workspace.delete_record("task", "never-there")

    def test_results_are_content_addressed(self, workspace: Workspace) -> None:
        h1 = cache.store(workspace, {"x": [1, 2, 3]})
        h2 = cache.store(workspace, {"x": [1, 2, 3]})
        h3 = cache.store(workspace, {"x": [1, 2, 4]})
        assert h1 == h2 != h3
        assert workspace.has_result(h1) and workspace.has_result(h3)
        assert cache.load_hash(workspace, h1) == {"x": [1, 2, 3]}
        assert h1 in set(workspace.iter_results())
        path = workspace.open_result(h1)
        assert path is not None and read_manifest(path)["result_hash"] == h1
        workspace.delete_result(h3)
        assert not workspace.has_result(h3)
        assert workspace.open_result(h3) is None

    def test_staging_dir_is_removed(self, workspace: Workspace) -> None:
        with workspace.staging_dir() as staged:
            (staged / "f").write_text("x")
            assert staged.is_dir()
        assert not staged.exists()

    def test_lock_excludes_a_second_holder(self, workspace: Workspace) -> None:
        first = LockHolder.current(run="r1", task="t")
        assert workspace.lock_holder("lk") is None
        with workspace.lock("lk", first):
            with pytest.raises(TaskLockedError) as info, workspace.lock("lk", LockHolder.current(run="r2", task="t")):
                pass
            assert str(os.getpid()) in str(info.value)
        assert workspace.lock_holder("lk") is None
        with workspace.lock("lk", first):
            pass

    def test_logs_newest_first(self, workspace: Workspace) -> None:
        p1 = workspace.log_path("task", "abc", "20260101-000000-1-0")
        p1.write_text("first\n")
        os.utime(p1, (1_000_000, 1_000_000))
        p2 = workspace.log_path("task", "abc", "20260101-000001-1-1")
        p2.write_text("second\n")
        workspace.publish_log("task", "abc", "20260101-000001-1-1", p2, final=True)
        logs = workspace.list_logs("task", "abc")
        assert [entry.read() for entry in logs][:2] == ["second\n", "first\n"]
        assert workspace.list_logs("task", "nothing") == []

    def test_work_dir_persists(self, workspace: Workspace) -> None:
        d = workspace.work_dir("wd1")
        (d / "ckpt").write_text("3")
        workspace.sync_work_dir("wd1", d)
        assert (workspace.work_dir("wd1") / "ckpt").read_text() == "3"
        e1 = workspace.work_dir("wd2", persistent=False)
        e2 = workspace.work_dir("wd2", persistent=False)
        assert e1 != e2

    def test_task_caching_rules(self, workspace: Workspace) -> None:
        task = Task(T.add, a=2, b=3)
        assert cache.status(workspace, task) == "pending"
        report = run(task, executor="in-process", workspace=workspace, reporter=_Quiet())
        assert report.ok
        assert cache.is_cached(workspace, task) and cache.status(workspace, task) == "done"
        assert task.result(workspace=workspace) == 5
        prov = cache.provenance(workspace, task)
        assert prov is not None and prov["executor"] == "in-process"
        failing = Task(T.boom, x=1)
        report = run(failing, executor="in-process", workspace=workspace, reporter=_Quiet())
        assert not report.ok
        assert cache.status(workspace, failing) == "failed"
        assert "boom 1" in (cache.failure(workspace, failing) or {}).get("error", "")
        with pytest.raises(NotCachedError):
            cache.load(workspace, failing)

    def test_corrupted_result_is_not_returned(self, workspace: Workspace) -> None:
        expected = b"0123456789" * 100
        h = cache.store(workspace, expected)
        path = workspace.open_result(h)
        assert path is not None
        manifest = read_manifest(path)
        victim = path / next(iter(manifest["files"]))
        if not os.access(victim, os.W_OK):
            pytest.skip("the workspace's local copy is read-only")
        victim.write_bytes(b"garbage")
        # Either the damage is reported, or (a workspace that keeps a local copy of a remote store) the copy is
        # healed and the right value comes back; a wrong value is never returned.
        try:
            value = cache.load_hash(workspace, h)
        except (ResultCorruptedError, NotCachedError):
            return
        assert value == expected


class _Quiet:
    def stale(self, *a: Any) -> None: ...
    def start(self, *a: Any) -> None: ...
    def unit_started(self, *a: Any) -> None: ...
    def unit_finished(self, *a: Any) -> None: ...
    def finish(self, *a: Any) -> None: ...


class ExecutorContract:
    """Subclass and provide ``executor`` and ``workspace`` fixtures (a workspace the executor's workers share)."""

    @pytest.fixture
    def executor(self) -> Executor:
        raise NotImplementedError("provide an `executor` fixture")

    @pytest.fixture
    def workspace(self) -> Workspace:
        raise NotImplementedError("provide a `workspace` fixture")

    def test_runs_a_graph(self, executor: Executor, workspace: Workspace) -> None:
        a = Task(T.add, a=1, b=2)
        b = Task(T.add, a=a.T, b=Task(T.nocache_double, x=a.T).T)
        report = run(b, executor=executor, workspace=workspace, reporter=_Quiet())
        assert report.ok, report.outcomes
        assert b.result(workspace=workspace) == 9
        again = run(b, executor=executor, workspace=workspace, reporter=_Quiet())
        assert again.ok and not again.outcomes

    def test_failure_skips_dependents_only(self, executor: Executor, workspace: Workspace, tmp_path: Path) -> None:
        bad = Task(T.boom, x=7)
        dependent = Task(T.add, a=bad.T, b=1)
        independent = Task(T.write_marker, directory=str(tmp_path), name="ind", value=3)
        report = run([dependent, independent], executor=executor, workspace=workspace, reporter=_Quiet())
        assert not report.ok
        statuses = {report.units[u].root.name: o.status for u, o in report.outcomes.items()}
        assert statuses["boom"] == "failed"
        assert statuses["add"] == "skipped"
        assert statuses["write_marker"] == "done"
        assert independent.result(workspace=workspace) == 3
        assert "boom 7" in (cache.failure(workspace, bad) or {}).get("error", "")

    def test_each_task_runs_once(self, executor: Executor, workspace: Workspace, tmp_path: Path) -> None:
        marks = tmp_path / "marks"
        marks.mkdir()
        tasks = [Task(T.write_marker, directory=str(marks), name=f"m{i}", value=i) for i in range(4)]
        assert run(tasks, executor=executor, workspace=workspace, reporter=_Quiet()).ok
        assert run(tasks, executor=executor, workspace=workspace, reporter=_Quiet()).ok
        assert len(list(marks.iterdir())) == 4

    def test_output_goes_to_each_tasks_own_log(
        self, executor: Executor, workspace: Workspace, capfd: pytest.CaptureFixture[str]
    ) -> None:
        """What a task prints lands in its own log and in no other task's; the run's display stays on the terminal
        (never in a task log), and the caller prints where it did before once the run is over. (Whether a task's
        output is also shown on the terminal is the executor's choice.) The log is the newest `task_logs` finds:
        a file, or the text kept in the task's record (a quick task that succeeded, captured in this process)."""
        tasks = [Task(T.chatty, i=i) for i in range(6)]
        report = run(tasks, executor=executor, workspace=workspace, reporter=PlainReporter())
        assert report.ok, report.outcomes
        print("the caller prints after the run")
        out, err = capfd.readouterr()
        assert "the caller prints after the run" in out
        assert err.count("✓ ") == 6
        for t in tasks:
            i = t.arguments["i"]
            log = task_logs(workspace, t)[0].read()
            assert f"chatty task {i} on stdout" in log and f"chatty task {i} on stderr" in log
            assert log.count("chatty task") == 2 and "✓" not in log

    def test_units_in_this_process_use_the_runs_memory_workspace(self, executor: Executor, workspace: Workspace) -> None:
        """An executor that runs units in this process (``SNAPSHOT = False``) works on a workspace that lives in
        this process: results stay, a second run finds them all."""
        if executor.SNAPSHOT:
            pytest.skip("units run in other processes: a process-local workspace cannot be shared with them")
        ws = MemoryWorkspace()
        a = Task(T.add, a=2, b=3)
        b = Task(T.add, a=a.T, b=Task(T.nocache_double, x=a.T).T)
        assert run(b, executor=executor, workspace=ws, reporter=_Quiet()).ok
        assert cache.load(ws, b) == 15
        again = run(b, executor=executor, workspace=ws, reporter=_Quiet())
        assert again.ok and not again.outcomes


class SerializerContract:
    """Subclass and provide ``serializer`` (an instance) and ``values`` (a list of sample values)."""

    #: Whether the registry must pick this serializer for the sample values' types.
    registered: bool = True

    @pytest.fixture
    def serializer(self) -> Serializer:
        raise NotImplementedError("provide a `serializer` fixture")

    @pytest.fixture
    def values(self) -> list[Any]:
        raise NotImplementedError("provide a `values` fixture")

    def assert_equal(self, a: Any, b: Any) -> None:
        assert a == b

    def test_round_trip(self, serializer: Serializer, values: list[Any], tmp_path: Path) -> None:
        for i, value in enumerate(values):
            d = tmp_path / f"v{i}"
            save_result(value, d, serializer)
            self.assert_equal(load_result(d, serializer=serializer), value)

    def test_hash_is_deterministic(self, serializer: Serializer, values: list[Any], tmp_path: Path) -> None:
        for i, value in enumerate(values):
            h1, _ = save_result(value, tmp_path / f"a{i}", serializer)
            h2, _ = save_result(value, tmp_path / f"b{i}", serializer)
            assert h1 == h2

    def test_registry_picks_it(self, serializer: Serializer, values: list[Any]) -> None:
        if not self.registered:
            pytest.skip("not registered for automatic dispatch")
        for value in values:
            assert serializer_for(value).PLUGIN_NAME == serializer.PLUGIN_NAME

    def test_manifest_records_format(self, serializer: Serializer, values: list[Any], tmp_path: Path) -> None:
        _, manifest = save_result(values[0], tmp_path / "m", serializer)
        assert manifest["version"] == serializer.FORMAT_VERSION
        assert manifest["files"], "a serializer must write at least one file"

    def test_small_results_match_the_folder(self, serializer: Serializer, values: list[Any], tmp_path: Path) -> None:
        """Where the serializer gives small results in memory (`Serializer.save_small`), they are the files
        `save` writes, under the same result hash, and `load_small` reads them back."""
        packs = [(i, value, pack(value, serializer)) for i, value in enumerate(values)]
        if all(packed is None for _, _, packed in packs):
            pytest.skip("no sample value is kept inside the record: every result gets its folder")
        for i, value, packed in packs:
            if packed is None:
                continue
            assert sum(info["size"] for info in packed["manifest"]["files"].values()) <= INLINE_MAX_BYTES
            rh, manifest = save_result(value, tmp_path / f"s{i}", serializer)
            assert packed["result_hash"] == rh, "save_small must give exactly the files save writes"
            assert packed["manifest"] == manifest
            self.assert_equal(load_inline(packed, rh, serializer=serializer), value)

    def test_newer_format_is_refused(self, serializer: Serializer, values: list[Any], tmp_path: Path) -> None:
        import json

        d = tmp_path / "n"
        save_result(values[0], d, serializer)
        manifest = json.loads((d / "manifest.json").read_text())
        manifest["version"] = serializer.FORMAT_VERSION + 1
        (d / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(ResultCorruptedError):
            load_result(d, serializer=serializer)
