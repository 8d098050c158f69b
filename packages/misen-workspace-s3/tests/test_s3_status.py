"""The status of many tasks on S3 in a bounded number of requests: `misen.cache.statuses` reads records through
one listing per record kind and the record packs, instead of one request per task (counted at the client)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from misen import Task, cache
from misen.testing import tasks as T
from misen_workspace_s3 import S3Workspace


def _counting(ws: S3Workspace) -> list[str]:
    """Every HTTP request the workspace's S3 client sends from now on (one entry each, retries included)."""
    ws.remote.exists("nothing-here")  # opens the client
    seen: list[str] = []

    def count(request: Any = None, **_: Any) -> None:
        seen.append(str(getattr(request, "url", "?")))

    ws.remote.fs.s3.meta.events.register("before-send.s3", count)
    return seen


def _fill(ws: S3Workspace, n: int) -> dict[str, list[Any]]:
    """``n`` tasks of each status: done, failed, stale and pending (all done tasks share one stored result)."""
    done = [Task(T.add, a=i, b=-i) for i in range(n)]
    failed = [Task(T.add, a=i, b=1000) for i in range(n)]
    stale = [Task(T.add, a=i, b=2000) for i in range(n)]
    pending = [Task(T.add, a=i, b=3000) for i in range(n)]
    rh = cache.store(ws, 0)
    for t in done:
        cache.link(ws, t, resolved=t.hash, result=rh)
    for t in failed:
        cache.record_failure(ws, t, status="failed", error="it broke", log=None)
    for t in stale:  # the result of an earlier version of the code, under the same call
        ws.put_record("key", t.key_hash, {"task": "0" * 32, "result": rh})
    return {"done": done, "failed": failed, "stale": stale, "pending": pending}


def _tasks(ws_url: str, endpoint: str, cache_dir: Path) -> S3Workspace:
    return S3Workspace(url=ws_url, endpoint_url=endpoint, cache_dir=str(cache_dir))


def test_status_of_many_tasks_takes_a_bounded_number_of_requests(
    bucket: str, moto_endpoint: str, tmp_path: Path
) -> None:
    url = f"s3://{bucket}/status"
    writer = _tasks(url, moto_endpoint, tmp_path / "writer")
    groups = _fill(writer, 40)
    writer.sync()  # the end of a run: the records written go up as one pack too
    # A record written after the pack, by a process that never reached its sync: read on its own, never taken
    # from the pack's older copy.
    late = _tasks(url, moto_endpoint, tmp_path / "late")
    moved = groups["done"][0]
    cache.record_failure(late, moved, status="failed", error="later", log=None)
    cache.drop_result(late, moved)
    groups["done"].remove(moved)
    groups["failed"].append(moved)
    late._packs.pending.clear()  # it crashed before its sync
    tasks = [t for group in groups.values() for t in group]

    reader = _tasks(url, moto_endpoint, tmp_path / "reader")  # another machine: nothing cached locally
    requests = _counting(reader)
    got = cache.statuses(reader, tasks)
    batched = len(requests)
    for status, group in groups.items():
        assert {got[t.hash] for t in group} == {status}, status
    # The same answers, one task at a time, cost several requests per task.
    del requests[:]
    assert {t.hash: cache.status(reader, t) for t in tasks} == got
    one_by_one = len(requests)
    assert one_by_one >= len(tasks)
    # Listings (records of three kinds, results, packs) and the pack itself, plus the one late record: a handful
    # of requests for 160 tasks, and the same handful for 10,000 (a listing page holds 1,000 objects).
    assert batched <= 16, (batched, one_by_one)


def test_statuses_answer_as_status_on_every_workspace_kind(make_ws: Any) -> None:
    ws = make_ws()
    groups = _fill(ws, 3)
    ws.sync()
    tasks = [t for group in groups.values() for t in group]
    assert cache.statuses(ws, tasks) == {t.hash: cache.status(ws, t) for t in tasks}
    assert {cache.statuses(ws, tasks)[t.hash] for t in groups["stale"]} == {"stale"}


def test_records_written_by_local_workers_are_packed(bucket: str, moto_endpoint: str, tmp_path: Path) -> None:
    import pytest

    local = pytest.importorskip("misen_executor_local", reason="the local executor is not installed")
    from misen.runner import run

    url = f"s3://{bucket}/workers"
    ws = _tasks(url, moto_endpoint, tmp_path / "runner")
    tasks = [Task(T.add, a=i, b=1) for i in range(80)]
    report = run(tasks, executor=local.LocalExecutor(num_cpus=2, grace_period=2.0), workspace=ws)
    assert report.ok, report.outcomes
    # The workers wrote the records; each closed its workspace at the end of the run, uploading its pack.
    assert [e for e in ws.remote.listdir("packs") if e["name"].endswith(".json")]
    reader = _tasks(url, moto_endpoint, tmp_path / "reader")
    requests = _counting(reader)
    assert set(cache.statuses(reader, tasks).values()) == {"done"}
    assert len(requests) <= 16, len(requests)
