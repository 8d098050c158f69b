"""Task logs kept in memory until they matter (issue 17): a quick task that succeeds writes no log file (its log is in
its record, where `misen logs`, `result --provenance` and the report find it); a task that fails, runs past the
threshold (printing or silent) or prints a lot gets its log file, the running ones while they still run. Real runs:
the experiment's command lines in subprocesses on the disk workspace, and the threads executor in this process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import pytest
from misen import MemoryWorkspace, Task, meta
from misen.reporting import PlainReporter
from misen.runner import run
from misen.tasklog import INLINE_LIMIT, Spool, SpoolLog, TaskLog, task_logs
from test_cli_project import Project, make_project, pycache_dir

FLOW = '''
import time
from pathlib import Path

from misen import Experiment, Task, meta


@meta(id="LOGS3SAY01", cache=True)
def say(i: int) -> int:
    print(f"task {i} says hello")
    return i


@meta(id="LOGS3SUM01", cache=True)
def add_all(values: list) -> int:
    print(f"adding {len(values)} values")
    return sum(values)


@meta(id="LOGS3BAD01", cache=True)
def bad(i: int) -> int:
    print(f"bad {i} is about to fail")
    raise ValueError(f"bad {i} fails on purpose")


@meta(id="LOGS3WAIT1", cache=True)
def wait(release: str, talk: bool) -> str:
    """Runs until the file ``release`` exists (the test creates it once it has seen the log file)."""
    if talk:
        print("waiting for the release file", flush=True)
    deadline = time.time() + 120
    while not Path(release).exists() and time.time() < deadline:
        time.sleep(0.05)
    if talk:
        print("released")
    return "ok"


@meta(id="LOGS3BIG01", cache=True)
def shout(size: int) -> int:
    line = "x" * 99
    for _ in range(size // 100 + 1):
        print(line)
    return size


class Logs(Experiment):
    release: str = "release"
    n: int = 40

    def tasks(self) -> dict[str, Task]:
        return {
            "quick": Task(say, i=-1),
            "bad": Task(bad, i=7),
            "sleeper": Task(wait, release=self.release, talk=True),
            "silent": Task(wait, release=self.release, talk=False),
            "big": Task(shout, size=SIZE),
            "total": Task(add_all, values=[Task(say, i=i).T for i in range(self.n)]),
        }


if __name__ == "__main__":
    Logs.cli()
'''
MODULE = "my_project.logs_flow"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    proj = make_project(tmp_path / "proj", pycache_dir())
    proj.write("src/my_project/logs_flow.py", FLOW.replace("SIZE", str(INLINE_LIMIT + 10_000)))
    return proj


def _log_files(project: Project) -> list[Path]:
    return sorted((project.root / ".misen" / "logs" / "task").rglob("*.log"))


def _run(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    proc = project.exp("logs_flow", *args)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_a_quick_task_that_succeeds_writes_no_log_file_and_logs_prints_it(project: Project) -> None:
    _run(project, "run", "quick")
    assert _log_files(project) == []
    assert not (project.root / ".misen" / "logs" / "task").exists()  # no folder either
    logs = _run(project, "logs", "quick")
    assert "task -1 says hello" in logs.stdout and "[misen] done in" in logs.stdout
    assert "==> say[i=-1] (in the task record) <==" in logs.stdout
    listed = _run(project, "logs", "quick", "--list")
    assert "in the task record" in listed.stdout
    prov = _run(project, "result", "quick", "--provenance")
    assert re.search(r"^log +in the task record \(\d+ lines\): `logs quick` prints it$", prov.stdout, re.M)
    assert "says hello" not in prov.stdout  # the text itself is for `logs`


def test_a_failing_task_writes_its_output_and_traceback_to_its_file(project: Project) -> None:
    proc = project.exp("logs_flow", "run", "bad")
    assert proc.returncode == 1
    (path,) = _log_files(project)
    text = path.read_text()
    assert "bad 7 is about to fail" in text
    assert "Traceback (most recent call last)" in text and text.rstrip().endswith("ValueError: bad 7 fails on purpose")
    assert str(path) in proc.stderr  # the run's display names the file
    paths = _run(project, "logs", "bad", "--path")
    assert paths.stdout.split() == [str(path)]


def _while_running(project: Project, name: str, release: Path) -> tuple[Path, str]:
    """Run task ``name`` in a subprocess, wait for its log file to appear while it runs, then let it end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", MODULE, "run", name, "--release", str(release)],
        cwd=project.root, env=project.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _log_files(project) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        files = _log_files(project)
        assert proc.poll() is None, "the task ended before its log file appeared"
        assert len(files) == 1, "no log file while the task runs"
        during = files[0].read_text()
        release.write_text("")
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return files[0], during


def test_a_task_that_runs_past_the_threshold_has_its_log_file_while_it_runs(project: Project) -> None:
    path, during = _while_running(project, "sleeper", project.root / "release")
    assert "waiting for the release file" in during and "released" not in during
    after = path.read_text()
    assert "waiting for the release file" in after and "released" in after and "[misen] done in" in after
    assert _log_files(project) == [path]
    logs = _run(project, "logs", "sleeper", "--release", str(project.root / "release"))
    assert f"==> wait[talk=True] ({path}) <==" in logs.stdout and "released" in logs.stdout


def test_run_verbose_streams_a_long_tasks_log_while_it_runs(project: Project) -> None:
    """``run -v`` follows the file a running task's log becomes, before the task ends (here: before the test lets
    it end), and a quick task's log from its record once it ended."""
    release = project.root / "release"
    proc = subprocess.Popen(
        [sys.executable, "-m", MODULE, "run", "sleeper", "quick", "-v", "--release", str(release)],
        cwd=project.root, env=project.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "wait │ waiting for the release file" in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        streamed = seen.wait(60)
        release.write_text("")
        proc.wait(120)
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert streamed and proc.returncode == 0, "".join(lines)
    text = "".join(lines)
    assert "wait │ released" in text and "say │ task -1 says hello" in text


def test_a_silent_task_that_runs_past_the_threshold_gets_its_log_file_too(project: Project) -> None:
    path, during = _while_running(project, "silent", project.root / "release")
    assert during.startswith("[misen] wait on ") and during.count("\n") == 1  # the header line alone
    assert "[misen] done in" in path.read_text()


def test_a_task_that_prints_past_the_size_limit_gets_its_log_file(project: Project) -> None:
    _run(project, "run", "big")
    (path,) = _log_files(project)
    text = path.read_text()
    assert len(text) > INLINE_LIMIT and text.count("x" * 99) == (INLINE_LIMIT + 10_000) // 100 + 1
    assert "[misen] done in" in text
    prov = _run(project, "result", "big", "--provenance")
    assert re.search(rf"^log +{re.escape(str(path))}$", prov.stdout, re.M)


def test_a_sweep_of_quick_tasks_writes_no_log_file_and_logs_lists_them_all(project: Project) -> None:
    _run(project, "run", "total")
    assert _log_files(project) == []
    listed = _run(project, "logs", "--list")
    rows = [ln for ln in listed.stdout.splitlines() if ln.strip()]
    # The 40 swept tasks and their sum; the tasks of the other names never ran, so they have no log.
    assert len(rows) == 41 and all(ln.endswith("in the task record") for ln in rows), listed.stdout
    dumped = _run(project, "logs", "say")
    assert all(f"task {i} says hello" in dumped.stdout for i in range(40))
    assert dumped.stdout.count("==> ") == 40
    none = project.exp("logs_flow", "logs", "--path")
    assert none.returncode == 0 and none.stdout == ""
    assert "41 of these logs are kept in the task record" in none.stderr


def _report_data(project: Project) -> dict[str, Any]:
    out = project.root / "r.html"
    proc = _run(project, "report", "-o", str(out))
    assert Path(proc.stdout.strip()) == out
    match = re.search(r'<script type="application/json" id="misen-data">(.*?)</script>', out.read_text(), re.S)
    assert match is not None
    return json.loads(match.group(1))


def test_the_report_shows_the_log_kept_in_the_record(project: Project) -> None:
    _run(project, "run", "quick")
    assert project.exp("logs_flow", "run", "bad").returncode == 1
    tasks = {t["fn"]: t for t in _report_data(project)["tasks"] if t["state"] in ("done", "failed")}
    quick = tasks["say"]["log"]
    assert "task -1 says hello" in quick["text"] and quick["path"].startswith("in the task record")
    bad = tasks["bad"]["log"]
    assert bad["path"].endswith(".log") and "ValueError: bad 7 fails on purpose" in bad["text"]


# --- the threads executor in this process ("thread" capture) ------------------------------------------------------


@meta(id="LOGS3THR01", cache=True)
def _waits_for(flag: str, text: str) -> str:
    print(text, flush=True)
    deadline = time.time() + 120
    while not Path(flag).exists() and time.time() < deadline:
        time.sleep(0.05)
    print("the flag is up")
    return text


@meta(id="LOGS3THR02", cache=True)
def _quick(i: int) -> int:
    print(f"thread task {i}")
    return i


def test_threads_executor_keeps_quick_logs_in_records_and_writes_a_long_tasks_file_while_it_runs(
    misen_session: Any, tmp_path: Path
) -> None:
    ws = MemoryWorkspace()
    flag = tmp_path / "flag"
    long = Task(_waits_for, flag=str(flag), text="long task started")
    quick = [Task(_quick, i=i) for i in range(8)]
    done: list[Any] = []
    runner = threading.Thread(
        target=lambda: done.append(run([long, *quick], executor="threads", workspace=ws, reporter=PlainReporter()))
    )
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while not ws.list_logs("task", long.hash) and time.monotonic() < deadline and runner.is_alive():
            time.sleep(0.05)
        (entry,) = ws.list_logs("task", long.hash)
        assert runner.is_alive() and entry.path is not None
        assert "long task started" in entry.read() and "the flag is up" not in entry.read()
    finally:
        flag.write_text("")
        runner.join(120)
    assert done and done[0].ok
    (entry,) = task_logs(ws, long)
    assert entry.path is not None and "the flag is up" in entry.read()
    for t in quick:
        assert ws.list_logs("task", t.hash) == []
        (inline,) = task_logs(ws, t)
        assert inline.path is None and f"thread task {t.arguments['i']}" in inline.read()


def test_a_spool_log_becomes_its_file_by_a_link_or_by_a_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The "fd" capture of a worker: what goes through the spool's descriptor (as a subprocess would write) is
    the log; a quick success reads it back, a log that matters becomes the attempt's file: the spool's own inode by
    a hard link, or, where links are refused, a copy refreshed when the attempt ends."""
    spool = Spool(str(tmp_path / "spool"))
    quick = SpoolLog(lambda: tmp_path / "never.log", spool, after=60)
    os.write(quick.fileno(), b"printed by a child\n")
    assert quick.settle("[misen] done\n") == {"log": None, "log_text": "printed by a child\n[misen] done\n"}
    assert not (tmp_path / "never.log").exists()

    linked = SpoolLog(lambda: tmp_path / "a.log", spool, after=60)  # the spool is emptied for the next attempt
    os.write(linked.fileno(), b"first\n")
    assert linked.promote() == tmp_path / "a.log"
    os.write(linked.fileno(), b"after the link\n")
    assert linked.keep("Traceback\n") == str(tmp_path / "a.log")
    assert (tmp_path / "a.log").read_text() == "first\nafter the link\nTraceback\n"
    fresh = SpoolLog(lambda: tmp_path / "b.log", spool, after=60)  # a new spool file: a.log keeps its text
    os.write(fresh.fileno(), b"next\n")
    assert (tmp_path / "a.log").read_text() == "first\nafter the link\nTraceback\n"
    assert fresh.settle()["log_text"] == "next\n"

    def no_links(self: Spool, path: Path) -> None:
        raise OSError(1, "hard links refused")

    monkeypatch.setattr(Spool, "became", no_links)
    copied = SpoolLog(lambda: tmp_path / "c.log", spool, after=60)
    os.write(copied.fileno(), b"before\n")
    copied.promote()
    os.write(copied.fileno(), b"after the copy\n")
    assert copied.settle() == {"log": str(tmp_path / "c.log")}
    assert (tmp_path / "c.log").read_text() == "before\nafter the copy\n"


def test_a_big_log_whose_file_is_refused_keeps_its_end_in_the_record(tmp_path: Path) -> None:
    """A full or read-only disk: the log stays in memory (or in the spool), and the record keeps its last
    ``limit`` characters under a line that says so, for both kinds of log."""

    def refused() -> Path:
        raise OSError(28, "No space left on device")

    note = "[misen] (the log file could not be written: only the end of the log is kept)\n"
    log = TaskLog(refused, after=60, limit=100)
    log.write("a" * 150)
    log.write("the end\n")
    got = log.settle("[misen] done\n")
    assert got["log"] is None and not log.on_disk()
    assert got["log_text"] == note + ("a" * 150 + "the end\n[misen] done\n")[-100:]

    spooled = SpoolLog(refused, Spool(str(tmp_path / "spool")), after=60, limit=100)
    os.write(spooled.fileno(), b"b" * 150 + b"last line\n")
    got = spooled.settle()
    assert got["log"] is None and got["log_text"] == note + ("b" * 150 + "last line\n")[-100:]

    small = TaskLog(refused, after=60, limit=100)
    small.write("short\n")
    assert small.settle() == {"log": None, "log_text": "short\n"}  # nothing clipped below the limit
