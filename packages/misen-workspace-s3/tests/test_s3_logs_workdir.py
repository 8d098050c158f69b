"""Logs reach the store while a task runs and completely at its end; WORK_DIR follows a task across machines."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from misen_workspace_s3 import S3Workspace


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _remote_text(ws: S3Workspace, kind: str, key: str) -> list[str]:
    return [entry.read() for entry in ws.list_logs(kind, key)]


def test_a_running_tasks_log_is_uploaded_periodically(make_ws: Callable[..., S3Workspace]) -> None:
    worker, viewer = make_ws(log_upload_interval=0.1), make_ws()
    path = worker.log_path("task", "k1", "20260101-000000-1-0")
    with open(path, "a") as log:
        log.write("epoch 1\n")
        log.flush()
        wait_for("the first line upstream", lambda: _remote_text(viewer, "task", "k1") == ["epoch 1\n"])
        log.write("epoch 2\n")
        log.flush()
        wait_for(
            "the second line upstream", lambda: _remote_text(viewer, "task", "k1") == ["epoch 1\nepoch 2\n"]
        )
        log.write("done\n")
    worker.publish_log("task", "k1", "20260101-000000-1-0", path, final=True)
    assert _remote_text(viewer, "task", "k1") == ["epoch 1\nepoch 2\ndone\n"]
    assert worker.remote.read("logs/task/k1/20260101-000000-1-0.log") == b"epoch 1\nepoch 2\ndone\n"


def test_without_periodic_upload_the_final_publish_uploads(make_ws: Callable[..., S3Workspace]) -> None:
    worker, viewer = make_ws(log_upload_interval=0), make_ws()
    path = worker.log_path("unit", "u1", "a1")
    path.write_text("partial\n")
    assert viewer.list_logs("unit", "u1") == []
    path.write_text("partial\nall of it\n")
    worker.publish_log("unit", "u1", "a1", path, final=True)
    logs = viewer.list_logs("unit", "u1")
    assert [(e.attempt, e.read()) for e in logs] == [("a1", "partial\nall of it\n")]


def test_close_uploads_what_is_still_watched(make_ws: Callable[..., S3Workspace]) -> None:
    worker, viewer = make_ws(log_upload_interval=3600), make_ws()
    path = worker.log_path("task", "k2", "a1")
    path.write_text("written just before the end\n")
    worker.close()
    assert _remote_text(viewer, "task", "k2") == ["written just before the end\n"]


def test_logs_of_every_attempt_newest_first(make_ws: Callable[..., S3Workspace]) -> None:
    a, b, viewer = make_ws(), make_ws(), make_ws()
    for ws, attempt, text in ((a, "a1", "first\n"), (b, "a2", "second\n")):
        path = ws.log_path("task", "k3", attempt)
        path.write_text(text)
        ws.publish_log("task", "k3", attempt, path, final=True)
        time.sleep(1.1)  # object stores date uploads to the second: keep the two apart
    assert [(e.attempt, e.read()) for e in viewer.list_logs("task", "k3")] == [
        ("a2", "second\n"),
        ("a1", "first\n"),
    ]


def test_work_dir_follows_a_task_to_another_machine(make_ws: Callable[..., S3Workspace]) -> None:
    first = make_ws(cache="machine-1")
    d = first.work_dir("train1")
    (d / "ckpt").mkdir()
    (d / "ckpt" / "epoch-1.pt").write_bytes(b"weights-1" * 1000)
    (d / "notes.txt").write_text("started")
    first.sync_work_dir("train1", d)

    second = make_ws(cache="machine-2")  # preempted; resumed elsewhere
    e = second.work_dir("train1")
    assert e != d
    assert (e / "ckpt" / "epoch-1.pt").read_bytes() == b"weights-1" * 1000
    assert (e / "notes.txt").read_text() == "started"
    (e / "ckpt" / "epoch-1.pt").write_bytes(b"weights-2" * 1000)  # same size, new content
    (e / "notes.txt").unlink()
    second.sync_work_dir("train1", e)
    assert second.remote.read("work/train1/notes.txt") is None

    back = make_ws(cache="machine-1")  # the first machine again, in a new process
    f = back.work_dir("train1")
    assert f == d
    assert (f / "ckpt" / "epoch-1.pt").read_bytes() == b"weights-2" * 1000


def test_newer_local_work_is_kept(make_ws: Callable[..., S3Workspace]) -> None:
    ws = make_ws(cache="machine-1")
    d = ws.work_dir("train2")
    (d / "state").write_text("step 10")
    ws.sync_work_dir("train2", d)
    (d / "state").write_text("step 20, not uploaded yet")
    later = time.time() + 5
    os.utime(d / "state", (later, later))
    again = make_ws(cache="machine-1").work_dir("train2")  # a new process on the same machine
    assert (again / "state").read_text() == "step 20, not uploaded yet"


def test_throwaway_work_dirs_are_fresh(make_ws: Callable[..., S3Workspace]) -> None:
    ws = make_ws()
    one, two = ws.work_dir("t", persistent=False), ws.work_dir("t", persistent=False)
    assert one != two and one.is_dir() and not any(one.iterdir())


def test_a_failed_final_upload_warns_and_is_retried_at_close(
    make_ws: Callable[..., S3Workspace], capsys: Any
) -> None:
    worker, viewer = make_ws(log_upload_interval=0), make_ws()
    path = worker.log_path("task", "k4", "a1")
    path.write_text("the end\n")
    upload = worker._uploader._upload
    failures = []

    def fail_once(local: Any, rel: str, *, force: bool = False) -> None:
        if not failures:
            failures.append(rel)
            raise OSError("network is down")
        upload(local, rel, force=force)

    worker._uploader._upload = fail_once  # type: ignore[method-assign]
    worker.publish_log("task", "k4", "a1", path, final=True)  # must not raise: the task's result is safe
    assert "network is down" in capsys.readouterr().err
    assert viewer.list_logs("task", "k4") == []
    worker.close()
    assert _remote_text(viewer, "task", "k4") == ["the end\n"]
