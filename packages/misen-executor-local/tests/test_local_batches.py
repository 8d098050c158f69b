"""Cheap units travel in batches: one message to a worker and one reply per batch, the next batch queued behind
the running one; a worker that dies in the middle of a batch loses nothing that finished and no unit after it."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from misen import Task, cache


def _batch_sizes(workspace: Any, tasks: list[Task[Any]]) -> list[int]:
    sizes = []
    for task in tasks:
        (log,) = workspace.list_logs("unit", task.hash)
        text = log.read()
        sizes.append(int(text.split("ran in a batch of ")[1].split()[0]) if "ran in a batch of " in text else 1)
    return sizes


def test_cheap_units_run_in_batches_on_one_worker(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any
) -> None:
    tasks = [Task(lx.cheap, i=i) for i in range(60)]
    report = run_local(tasks, num_cpus=1)
    assert report.ok, report.text
    values = [cache.load(workspace, t) for t in tasks]
    assert [v["i"] for v in values] == list(range(60))
    assert len({v["pid"] for v in values}) == 1  # one worker ran them all, one batch after the other
    sizes = _batch_sizes(workspace, tasks)
    assert sizes[0] == 1  # a function not seen yet runs alone: it may be slow, or end its worker
    assert max(sizes) > 1, sizes
    # The units of a batch share one unit log (one file, a name per unit), which says how each of them ended.
    batched = next(t for t, size in zip(tasks, sizes, strict=True) if size > 1)
    (log,) = workspace.list_logs("unit", batched.hash)
    assert log.path.stat().st_nlink > 1
    assert log.read().count("ended done") > 1 and f"({batched.hash})" in log.read()


def test_a_worker_dying_in_a_batch_keeps_what_finished_and_reruns_the_rest(
    lx: ModuleType, run_local: Callable[..., Any], workspace: Any
) -> None:
    tasks = [Task(lx.cheap, i=i) for i in range(40)]
    dying = Task(lx.cheap, i=999, exit_code=3)
    report = run_local([*tasks[:20], dying, *tasks[20:]], num_cpus=1)
    assert not report.ok
    assert [unit.root.hash for unit, _ in report.failed] == [dying.hash], report.text
    for task in tasks:
        assert cache.is_cached(workspace, task), report.text
    assert not cache.is_cached(workspace, dying)
    assert _batch_sizes(workspace, [dying])[0] > 1  # it died in the middle of a batch
    failure = cache.failure(workspace, dying)
    assert failure is not None and "exited with code 3" in failure["error"], failure
    pids = {cache.load(workspace, t)["pid"] for t in tasks}
    assert len(pids) == 2, pids  # the units after it ran on a fresh worker
