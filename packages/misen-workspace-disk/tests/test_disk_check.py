"""``misen workspace check``: reads every stored file, reports damage precisely, ``--repair`` drops it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from misen import Task, cache, meta
from misen.check import check_workspace
from misen.serializer import file_digest
from misen.workspace import LockHolder
from misen_workspace_disk import DiskWorkspace
from misen_workspace_disk.hooks import misen_add_commands

MIB = 1024 * 1024


@meta(id="DISKCHECK01", cache=True)
def produce(tag: str) -> object:
    return tag


@pytest.fixture
def cli() -> click.Group:
    @click.group()
    def main() -> None:
        """A stand-in for the `misen` group."""

    misen_add_commands(cli=main)
    return main


def _linked(ws: DiskWorkspace, tag: str, value: object) -> tuple[Task, str]:
    task = Task(produce, tag=tag)
    h = cache.store(ws, value)
    cache.link(ws, task, resolved="r" + task.hash[1:], result=h, provenance={})
    return task, h


def _data_file(ws: DiskWorkspace, h: str) -> Path:
    path = ws.open_result(h)
    return next(p for p in sorted(path.rglob("*")) if p.is_file() and not p.name.startswith((".", "manifest")))


def _damaged_workspace(ws: DiskWorkspace) -> dict[str, tuple[Task, str]]:
    tasks = {
        "intact": _linked(ws, "intact", list(range(1000))),
        "flipped": _linked(ws, "flipped", b"\x07" * (70 * MIB)),  # large: a record of the store's checksum exists
        "truncated": _linked(ws, "truncated", list(range(2000))),
        "deleted": _linked(ws, "deleted", "some text " * 100),
    }
    big = _data_file(ws, tasks["flipped"][1])
    with open(big, "r+b") as f:  # one byte, same size: only a full read finds it
        f.seek(50 * MIB)
        f.write(b"\x08")
    with open(_data_file(ws, tasks["truncated"][1]), "r+b") as f:
        f.truncate(10)
    _data_file(ws, tasks["deleted"][1]).unlink()
    return tasks


def test_check_reports_each_damage_and_repair_drops_it(cli: click.Group, workspace: DiskWorkspace) -> None:
    tasks = _damaged_workspace(workspace)
    result = CliRunner().invoke(cli, ["workspace", "check", "--directory", workspace.root])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    damaged = [line for line in lines if line.startswith("damaged")]
    assert len(damaged) == 3, result.output
    by_result = {h: name for name, (_, h) in tasks.items()}
    kinds = {by_result[line.split()[2].rstrip(":")]: line for line in damaged}
    assert "checksum mismatch in" in kinds["flipped"]
    assert "truncated" in kinds["truncated"] and "bytes" in kinds["truncated"]
    assert "missing" in kinds["deleted"]
    assert all("used by produce" in line for line in damaged)  # which task uses it
    assert "checked 4 results" in lines[-1] and "3 damaged" in lines[-1]
    # a plain check changes nothing
    assert all(workspace.has_result(h) for _, h in tasks.values())

    result = CliRunner().invoke(cli, ["workspace", "check", "--repair", "--directory", workspace.root])
    assert result.exit_code == 0, result.output
    assert result.output.count("— dropped") == 3
    for name, (task, h) in tasks.items():
        assert workspace.has_result(h) == (name == "intact")
        assert cache.is_cached(workspace, task) == (name == "intact")
        assert (workspace.get_record("task", task.hash) is not None) == (name == "intact")
    again = CliRunner().invoke(cli, ["workspace", "check", "--directory", workspace.root])
    assert again.exit_code == 0 and "0 damaged, 0 records" in again.output


def test_a_running_tasks_damaged_result_is_left_alone(workspace: DiskWorkspace) -> None:
    task, h = _linked(workspace, "running", list(range(500)))
    with open(_data_file(workspace, h), "r+b") as f:
        f.truncate(3)
    with workspace.lock(task.hash, LockHolder.current(task="produce")):
        report = check_workspace(workspace, repair=True)
    assert [d.result for d in report.damaged] == [h] and report.skipped_in_use == [h]
    assert workspace.has_result(h)


def test_a_manifest_naming_another_result_is_damage(workspace: DiskWorkspace) -> None:
    _, h = _linked(workspace, "manifest", [1, 2, 3])
    manifest_path = workspace.open_result(h) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["result_hash"] = "0" * 32
    manifest_path.write_text(json.dumps(manifest))
    report = check_workspace(workspace)
    assert [(d.result, d.kind) for d in report.damaged] == [(h, "manifest")]
    assert file_digest(manifest_path)  # still a readable file: only its content is wrong


def test_through_the_misen_command(workspace: DiskWorkspace, tmp_path: Path) -> None:
    _damaged_workspace(workspace)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "misen"), "workspace", "check", "--directory", workspace.root],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.count("damaged  result") == 3 and "Traceback" not in proc.stderr
