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
