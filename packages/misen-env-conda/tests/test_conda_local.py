"""A pixi.lock becomes a conda prefix for tasks under the local and in-process executors: built once, reused,
rebuilt when the lock changes, and named by ``why``."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from misen import cache
from misen.tasks import Task
from misen_env_conda._build import MARKER


def test_local_task_runs_the_locked_executable_and_reads_its_data(conda_project: Any, capfd: Any) -> None:
    p = conda_project
    task = Task(p.tasks.native, n=1)
    report = p.run(task)
    assert report.ok, report.outcomes
    value = task.result(workspace=p.workspace)
    (prefix,) = p.prefixes()
    assert value["prefix"] == str(prefix)
    assert value["out"] == f"hello from misen-demo in {prefix}"
    assert value["data"] == "forty-two"
    assert value["declared"] == "declared-by-the-package"  # etc/conda/env_vars.d of the package
    assert "misen: building the conda environment of pixi.lock, environment default" in capfd.readouterr().err
    prov = cache.provenance(p.workspace, task) or {}
    assert prov["native_environment"]["digest"] == prefix.name
    assert prov["native_environment"]["source"] == "pixi.lock, environment default, linux-64"
    # Nothing half-built around the prefix: no staging folder left.
    assert not list(p.envs.glob(".tmp-*"))


def test_leftovers_of_a_build_that_died_are_never_used(conda_project: Any) -> None:
    from misen_env_conda._lock import read_locked_environment

    p = conda_project
    digest = read_locked_environment(p.root / "pixi.lock", "default", None).digest
    (p.envs / f".tmp-{digest}-dead0000" / "bin").mkdir(parents=True)
    (p.envs / digest / "bin").mkdir(parents=True)  # renamed but never completed: no marker
    (p.envs / digest / "bin" / "misen-demo-hello").write_text("#!/bin/sh\necho stale\n")
    task = Task(p.tasks.native, n=1)
    assert p.run(task).ok
    assert task.result(workspace=p.workspace)["out"].startswith("hello from misen-demo")
    assert (p.envs / digest / MARKER).is_file()
    assert not list(p.envs.glob(".tmp-*"))


def test_second_run_reuses_the_prefix(conda_project: Any, capfd: Any) -> None:
    p = conda_project
    assert p.run(Task(p.tasks.native, n=1)).ok
    (prefix,) = p.prefixes()
    built = json.loads((prefix / MARKER).read_text())
    inode = (prefix / "bin" / "misen-demo-hello").stat().st_ino
    capfd.readouterr()
    again = Task(p.tasks.native, n=2)
    assert p.run(again).ok
    assert "misen: building" not in capfd.readouterr().err
    assert p.prefixes() == [prefix]
    assert json.loads((prefix / MARKER).read_text())["build_id"] == built["build_id"]
    assert (prefix / "bin" / "misen-demo-hello").stat().st_ino == inode
    assert again.result(workspace=p.workspace)["prefix"] == str(prefix)


def test_lock_change_builds_a_new_prefix_and_why_names_it(conda_project: Any) -> None:
    from misen.reproducibility import explain, verify

    p = conda_project
    first = Task(p.tasks.native, n=1)
    assert p.run(first).ok
    (old_prefix,) = p.prefixes()
    assert not any("native environment changed" in line for line in explain(first, p.workspace))
    assert [r.status for r in verify([first], p.workspace)] == ["same"]
    p.lock(version="1.1", data="forty-three")
    later = Task(p.tasks.native, n=2)
    assert p.run(later).ok
    new_prefix = next(x for x in p.prefixes() if x != old_prefix)
    assert later.result(workspace=p.workspace)["data"] == "forty-three"
    assert later.result(workspace=p.workspace)["prefix"] == str(new_prefix)
    # The earlier result is kept (a lock change does not make results stale), and `why` says what changed.
    assert first.is_cached(workspace=p.workspace)
    lines = explain(first, p.workspace)
    changed = [line for line in lines if "native environment changed" in line]
    assert changed and "pixi.lock" in changed[0], lines
    assert old_prefix.name[:12] in changed[0] and new_prefix.name[:12] in changed[0]
    # verify recomputes in the current environment: the new data file gives another result.
    assert [r.status for r in verify([first], p.workspace)] == ["different"]


def test_environment_by_meta_and_none(conda_project: Any) -> None:
    p = conda_project
    other = Task(p.tasks.in_other, n=1)
    without = Task(p.tasks.without, n=1)
    assert p.run([other, without]).ok
    assert other.result(workspace=p.workspace) == "other"
    assert without.result(workspace=p.workspace) is None
    assert "native_environment" not in (cache.provenance(p.workspace, without) or {})
    # default and other lock the same packages: one prefix serves both.
    assert len(p.prefixes()) == 1


def test_a_reused_worker_drops_the_previous_units_environment(conda_project: Any) -> None:
    from misen_executor_local import LocalExecutor

    p = conda_project
    first = Task(p.tasks.where, n=9)
    after = Task(p.tasks.without_after, previous=first.T)
    assert p.run(after, executor=LocalExecutor(max_workers=1)).ok
    before, value = first.result(workspace=p.workspace), after.result(workspace=p.workspace)
    assert value["pid"] == before["pid"]  # the same worker process ran both units
    assert value == {"pid": before["pid"], "prefix": None, "declared": None, "on_path": False}


def test_environment_turned_off_in_config(conda_project: Any) -> None:
    p = conda_project
    p.write_config('name = "none"')
    task = Task(p.tasks.without, n=2)
    assert p.run(Task(p.tasks.without, n=2)).ok
    assert task.result(workspace=p.workspace) is None
    assert not p.envs.exists()


def test_in_process_executor_applies_the_environment_while_the_unit_runs(conda_project: Any) -> None:
    p = conda_project
    before = dict(os.environ)
    task = Task(p.tasks.native, n=3)
    assert p.run(task, executor="in-process").ok
    value = task.result(workspace=p.workspace)
    assert value["data"] == "forty-two" and value["out"].startswith("hello from misen-demo")
    assert dict(os.environ) == before  # restored after the unit


def test_with_pixi_toml_and_a_hand_written_version_6_lock(conda_project: Any) -> None:
    p = conda_project
    rec = json.loads((p.channel / "noarch" / "repodata.json").read_text())["packages"]["misen-demo-1.0-0.tar.bz2"]
    url = (p.channel / "noarch" / "misen-demo-1.0-0.tar.bz2").as_uri()
    (p.root / "pixi.toml").write_text(
        '[workspace]\nname = "proj"\nchannels = ["file://channel"]\nplatforms = ["linux-64"]\n\n'
        '[dependencies]\nmisen-demo = "*"\n'
    )
    (p.root / "pixi.lock").write_text(
        textwrap.dedent(
            f"""\
            version: 6
            environments:
              default:
                channels:
                - url: {p.channel.as_uri()}/
                packages:
                  linux-64:
                  - conda: {url}
            packages:
            - conda: {url}
              sha256: {rec["sha256"]}
              md5: {rec["md5"]}
              subdir: noarch
              noarch: generic
              license: MIT
              size: {rec["size"]}
            """
        )
    )
    task = Task(p.tasks.native, n=4)
    assert p.run(task).ok, cache.failure(p.workspace, task)
    assert task.result(workspace=p.workspace)["data"] == "forty-two"


def test_two_concurrent_runs_build_the_prefix_once(conda_project: Any, tmp_path: Path) -> None:
    p = conda_project
    script = textwrap.dedent(
        f"""
        import io, sys
        sys.path.insert(0, {str(p.root / "src")!r})
        from misen.reporting import PlainReporter
        from misen.runner import run
        from misen.tasks import Task
        from {p.module}.tasks import native
        report = run(Task(native, n=int(sys.argv[1])), executor="in-process", reporter=PlainReporter(io.StringIO()))
        sys.exit(0 if report.ok else 1)
        """
    )
    # Hold the build lock until both runs wait for it, so they really ask for the prefix at the same time.
    from misen_env_conda._lock import read_locked_environment

    digest = read_locked_environment(p.root / "pixi.lock", "default", None).digest
    lock_file = p.envs / ".locks" / f"{digest}.lock"
    lock_file.parent.mkdir(parents=True)
    with open(lock_file, "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, str(n)], cwd=p.root, stderr=subprocess.PIPE,
                stdout=subprocess.DEVNULL, text=True,
            )
            for n in (10, 11)
        ]
        inode = os.fstat(held.fileno()).st_ino
        while _waiters(inode) < 2:
            assert all(proc.poll() is None for proc in procs), [proc.communicate()[1] for proc in procs]
            time.sleep(0.05)
        fcntl.flock(held.fileno(), fcntl.LOCK_UN)
    errors = [proc.communicate(timeout=300)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], errors
    assert sum(err.count("misen: building") for err in errors) == 1, errors
    (prefix,) = p.prefixes()
    assert Task(p.tasks.native, n=10).result(workspace=p.workspace)["prefix"] == str(prefix)
    assert Task(p.tasks.native, n=11).result(workspace=p.workspace)["prefix"] == str(prefix)


def _waiters(inode: int) -> int:
    """How many processes wait for a lock on the file with this inode (the ``->`` lines of /proc/locks)."""
    lines = Path("/proc/locks").read_text().splitlines()
    return sum(1 for line in lines if "->" in line and line.split()[-3].endswith(f":{inode}"))
