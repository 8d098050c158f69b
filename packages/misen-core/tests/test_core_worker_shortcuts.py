"""What the worker remembers instead of asking again for every task (issue 17), and that what it remembers is what
it would have asked: the pid (fork included), attempt names, the environment digest of a run, a plain task's
encoded arguments."""

from __future__ import annotations

import io
import os
import pickle
import re

import pytest
from misen import MemoryWorkspace, Task, identity, meta
from misen import worker as worker_module
from misen.reporting import PlainReporter
from misen.runner import run
from misen.workspace import process_id


@meta(id="SHORTCUT01", cache=True)
def plain(i: int, scale: float = 1.0) -> float:
    return i * scale


@meta(id="SHORTCUT02", cache=True)
def total(xs: list[float]) -> float:
    return sum(xs)


def _in_child(fn) -> str:  # type: ignore[no-untyped-def]
    """``fn()`` run in a child made by os.fork, its answer read back as text."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write, str(fn()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        answer = f.read()
    os.waitpid(pid, 0)
    return answer


def test_process_id_is_this_process_s_also_after_a_fork() -> None:
    assert process_id() == os.getpid()
    child = _in_child(lambda: f"{process_id()} {os.getpid()}")
    mine, real = child.split()
    assert mine == real and int(mine) != os.getpid()
    assert process_id() == os.getpid()


def test_attempt_names_are_unique_and_name_their_process() -> None:
    names = [worker_module._attempt_name() for _ in range(500)]
    assert len(set(names)) == 500
    assert all(re.fullmatch(rf"\d{{8}}-\d{{6}}-{os.getpid()}-[0-9a-f]{{6}}", n) for n in names)
    child = _in_child(worker_module._attempt_name)
    assert re.fullmatch(r"\d{8}-\d{6}-(\d+)-[0-9a-f]{6}", child)
    assert child.split("-")[2] != str(os.getpid())


def test_a_run_looks_the_environment_up_once_and_records_it(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = worker_module.environment_digest

    def counted(session=None):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(session)

    monkeypatch.setattr(worker_module, "environment_digest", counted)
    ws = MemoryWorkspace()
    tasks = [Task(plain, i=i) for i in range(30)]
    report = run(tasks, executor="in-process", workspace=ws, reporter=PlainReporter(stream=io.StringIO()))
    assert report.ok and len(calls) == 1
    from misen import cache

    assert {cache.provenance(ws, t)["environment"] for t in tasks} == {real()}
    run(
        [Task(plain, i=100 + i) for i in range(5)],
        executor="in-process",
        workspace=ws,
        reporter=PlainReporter(stream=io.StringIO()),
    )
    assert len(calls) == 2  # the next run looks again


def test_a_plain_task_s_resolved_hash_is_the_one_its_arguments_give() -> None:
    task = Task(plain, i=3, scale=2.5)
    fresh = identity.resolved_digest(task._head, task._fp_bytes, task._parts(), {})
    assert task._plain is not None and task.resolved_hash({}) == fresh
    rebuilt = pickle.loads(pickle.dumps(task))  # what a worker process gets: encodes its arguments again
    assert rebuilt._plain is None and rebuilt.resolved_hash({}) == fresh
    nested = Task(total, xs=[task, 1.0])
    assert nested._plain is None  # a nested task's result hash goes in: nothing to keep
    assert nested.resolved_hash({task._id_bytes: "r" * 32}) != nested.resolved_hash(
        {task._id_bytes: "s" * 32}
    )


class _CountingWorkspace(MemoryWorkspace):
    """Counts the records read by kind."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: dict[str, int] = {}

    def get_record(self, kind: str, key: str):  # type: ignore[no-untyped-def]
        self.reads[kind] = self.reads.get(kind, 0) + 1
        return super().get_record(kind, key)


def test_early_cutoff_is_looked_up_only_for_tasks_with_nested_tasks() -> None:
    """A task without a nested task has its resolved identity and its hash from the same bytes: its earlier result
    would be under its own hash, looked up already. A task with one still finds a result of equal inputs."""
    ws = _CountingWorkspace()
    leaves = [Task(plain, i=i) for i in range(20)]
    assert run(leaves, executor="in-process", workspace=ws, reporter=PlainReporter(stream=io.StringIO())).ok
    assert ws.reads.get("resolved", 0) == 0
    first = Task(total, xs=[Task(plain, i=1), 2.0])
    assert run([first], executor="in-process", workspace=ws, reporter=PlainReporter(stream=io.StringIO())).ok
    assert ws.reads.get("resolved", 0) == 1  # the dependent's lookup
    # Another task hash with the same inputs once resolved: plain(2, 0.5) gives the 1.0 that plain(1) gave.
    twin = Task(total, xs=[Task(plain, i=2, scale=0.5), 2.0])
    assert twin.hash != first.hash
    report = run([twin], executor="in-process", workspace=ws, reporter=PlainReporter(stream=io.StringIO()))
    assert report.ok and twin.result(workspace=ws) == 3.0
    from misen import cache

    assert cache.result_hash(ws, twin) == cache.result_hash(ws, first)
    # linked, not computed again: the twin's provenance is the first computation's
    assert cache.provenance(ws, twin)["start"] == cache.provenance(ws, first)["start"]


def test_prepare_process_applies_once_what_a_worker_is_given_for_every_unit(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import sys

    from misen.worker import prepare_process

    monkeypatch.setattr(sys, "path", ["/usr/lib/python", "/elsewhere"])
    snapshot = tmp_path / "snap"
    (snapshot / "src").mkdir(parents=True)
    prepare_process(str(snapshot), {"SHORTCUT_VAR": "1"}, ["/parent", "/elsewhere", "/parent"])
    first = list(sys.path)
    assert first == [str(snapshot / "src"), str(snapshot), "/usr/lib/python", "/elsewhere", "/parent"]
    assert os.environ["SHORTCUT_VAR"] == "1"
    prepare_process(str(snapshot), {"SHORTCUT_VAR": "2"}, ["/parent"])
    assert sys.path == first and os.environ["SHORTCUT_VAR"] == "2"
    other = tmp_path / "other"
    other.mkdir()
    sys.path.insert(0, "/pushed-by-a-task")
    prepare_process(str(other), {}, [])
    assert sys.path[:2] == [str(other), "/pushed-by-a-task"]
    prepare_process(str(snapshot), {}, [])
    assert sys.path[:2] == [str(snapshot / "src"), str(snapshot)] and sys.path.count(str(snapshot)) == 1
    monkeypatch.delenv("SHORTCUT_VAR")


def test_conditions_read_the_current_values_of_thread_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from misen.conditions import current_conditions

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert current_conditions()["threads"]["OMP_NUM_THREADS"] == "3"
    monkeypatch.setenv("OMP_NUM_THREADS", "5")  # the same names, another value
    monkeypatch.setenv("SHORTCUT_MAX_THREADS", "7")  # a new name
    threads = current_conditions()["threads"]
    assert threads["OMP_NUM_THREADS"] == "5" and threads["SHORTCUT_MAX_THREADS"] == "7"
    assert list(threads) == sorted(threads)
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert "OMP_NUM_THREADS" not in current_conditions()["threads"]
