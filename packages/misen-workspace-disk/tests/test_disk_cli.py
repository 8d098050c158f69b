"""``misen workspace info``, ``misen workspace gc`` and ``misen gc``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from misen import cache
from misen.workspace import LockHolder
from misen_workspace_disk import DiskWorkspace
from misen_workspace_disk.hooks import misen_add_commands


@pytest.fixture
def cli() -> click.Group:
    @click.group()
    def main() -> None:
        """A stand-in for the `misen` group."""

    misen_add_commands(cli=main)
    return main


def _age(workspace: DiskWorkspace, result: str, seconds: float = 7200) -> None:
    path = workspace.open_result(result)
    old = time.time() - seconds
    os.utime(path, (old, old))


def _populate(workspace: DiskWorkspace) -> dict[str, str]:
    from misen import Task, meta

    @meta(id="DISKCLI001", cache=True)
    def f(x: int) -> int:
        return x

    kept_task = Task(f, x=1)
    kept = cache.store(workspace, b"k" * 1000)
    cache.link(workspace, kept_task, resolved="a" * 32, result=kept, provenance={})
    orphan = cache.store(workspace, b"o" * 5000)
    fresh_orphan = cache.store(workspace, b"n" * 10)
    other_task = Task(f, x=2)
    other = cache.store(workspace, b"x" * 300)
    cache.link(workspace, other_task, resolved="b" * 32, result=other, provenance={})
    for h in (kept, orphan, other):
        _age(workspace, h)
    with workspace.lock("c" * 32, LockHolder.current()):
        pass
    workspace.log_path("task", kept_task.hash, "1").write_text("log")
    return {
        "kept": kept,
        "orphan": orphan,
        "fresh": fresh_orphan,
        "other": other,
        "task": kept_task,
        "other_task": other_task,
    }


def test_info(cli: click.Group, workspace: DiskWorkspace) -> None:
    _populate(workspace)
    res = CliRunner().invoke(cli, ["workspace", "info", "--directory", workspace.root])
    assert res.exit_code == 0, res.output
    assert f"workspace  {workspace.root}" in res.output
    assert "results    4 " in res.output
    assert "key 2, resolved 2, task 2" in res.output
    assert "logs       1 files" in res.output
    assert "locks      0 held, 1 lock files" in res.output
    res = CliRunner().invoke(cli, ["workspace", "info", "-d", workspace.root, "--json"])
    info = json.loads(res.output)
    assert info["results"] == 4 and info["records"]["task"] == 2 and info["areas"]["results"]["bytes"] > 6000


def test_info_on_missing_workspace_writes_nothing(cli: click.Group, tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["workspace", "info", "-d", str(tmp_path / "none")])
    assert res.exit_code == 0 and "not created yet" in res.output
    assert not (tmp_path / "none").exists()


def test_gc_removes_only_unreferenced(cli: click.Group, workspace: DiskWorkspace) -> None:
    p = _populate(workspace)
    dry = CliRunner().invoke(cli, ["gc", "--dry-run", "-d", workspace.root])
    assert dry.exit_code == 0, dry.output
    assert p["orphan"] in dry.output and "would free" in dry.output
    assert p["kept"] not in dry.output and p["fresh"] not in dry.output
    assert "1 unreferenced results kept" in dry.output
    assert workspace.has_result(p["orphan"])  # a dry run removes nothing
    from misen_workspace_disk._fs import tree_size
    from misen_workspace_disk._maintenance import human_size

    size = tree_size(workspace.open_result(p["orphan"]))[0]
    assert size > 5000
    res = CliRunner().invoke(cli, ["workspace", "gc", "-d", workspace.root])
    assert res.exit_code == 0, res.output
    assert f"freed {human_size(size)}" in res.output
    assert not workspace.has_result(p["orphan"])
    assert all(workspace.has_result(p[k]) for k in ("kept", "fresh", "other"))
    assert cache.is_cached(workspace, p["task"]) and cache.is_cached(workspace, p["other_task"])
    assert (Path(workspace.root) / "locks" / "c.lock").stat().st_size == 0  # an idle lock file, emptied


def test_gc_keeps_only_what_experiments_use(
    cli: click.Group, workspace: DiskWorkspace, tmp_path: Path, monkeypatch
) -> None:
    p = _populate(workspace)
    module = tmp_path / "gcexp_mod.py"
    module.write_text(
        "from misen import Task, meta\n"
        "@meta(id='DISKCLI001', cache=True)\n"
        "def f(x: int) -> int:\n    return x\n"
        "class Exp:\n    def tasks(self):\n        return {'one': Task(f, x=1)}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    res = CliRunner().invoke(cli, ["gc", "-d", workspace.root, "--experiment", "gcexp_mod:Exp"])
    assert res.exit_code == 0, res.output
    assert workspace.has_result(p["kept"]) and workspace.has_result(p["fresh"])
    assert not workspace.has_result(p["other"]) and not workspace.has_result(p["orphan"])
    assert workspace.get_record("task", p["other_task"].hash) is None  # no record left pointing nowhere
    assert cache.is_cached(workspace, p["task"])
    bad = CliRunner().invoke(cli, ["gc", "-d", workspace.root, "--experiment", "no_such_module_xyz:Exp"])
    assert bad.exit_code != 0 and "cannot import no_such_module_xyz" in bad.output


def test_gc_never_removes_a_running_tasks_result(
    cli: click.Group, workspace: DiskWorkspace, tmp_path: Path
) -> None:
    p = _populate(workspace)
    # the result of a running task is referenced only by its (old) key record: keep it while its lock is held
    workspace.delete_record("task", p["other_task"].hash)
    workspace.delete_record("key", p["other_task"].key_hash)
    workspace.put_record("key", "d" * 32, {"task": p["other_task"].hash, "result": p["other"]})
    with workspace.lock(p["other_task"].hash, LockHolder.current()):
        res = CliRunner().invoke(cli, ["gc", "-d", workspace.root, "-e", "nothing_here:X"])
        assert res.exit_code != 0
        from misen_workspace_disk._maintenance import apply_gc, plan_gc

        plan = plan_gc(workspace, keep=set())
        assert p["other"] not in [r for r, _, _ in plan.results]
        apply_gc(workspace, plan)
    assert workspace.has_result(p["other"])


def test_through_the_misen_command(workspace: DiskWorkspace, tmp_path: Path, python) -> None:
    p = _populate(workspace)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'gcproj'\n")
    (tmp_path / ".misen.toml").write_text(
        f'[workspace]\ntype = "disk"\ndirectory = "{Path(workspace.root).name}"\n'
    )
    run = "import sys\nfrom misen.cli import main\nsys.argv = ['misen', *sys.argv[1:]]\nmain()\n"
    info = python(run, "workspace", "info", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert f"workspace  {workspace.root}" in info.stdout and "results    4 " in info.stdout
    gc = python(run, "gc", "--dry-run", cwd=tmp_path)
    assert gc.returncode == 0, gc.stderr
    assert p["orphan"] in gc.stdout and "would free" in gc.stdout
    (tmp_path / ".misen.toml").write_text('[workspace]\ntype = "memory"\n')
    wrong = python(run, "workspace", "info", cwd=tmp_path)
    assert wrong.returncode != 0 and "configured workspace is 'memory'" in wrong.stdout + wrong.stderr
