"""Records, settings and the rule that queries never write."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from misen.errors import MisenError
from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings


def test_record_round_trip_and_layout(workspace: DiskWorkspace) -> None:
    workspace.put_record("task", "ab12cd", {"result": "r1", "name": "train"})
    assert workspace.get_record("task", "ab12cd") == {"result": "r1", "name": "train"}
    path = Path(workspace.root) / "records" / "task" / "a" / "ab12cd.json"
    assert json.loads(path.read_text()) == {"result": "r1", "name": "train"}
    workspace.put_record("task", "ab12cd", {"result": "r2"})
    assert workspace.get_record("task", "ab12cd") == {"result": "r2"}
    # no temporary file is left next to the record
    assert sorted(os.listdir(path.parent)) == ["ab12cd.json"]
    assert workspace.get_record("task", "ffff") is None
    assert workspace.get_record("failure", "ab12cd") is None


def test_get_records_iter_delete(workspace: DiskWorkspace) -> None:
    keys = [f"{i:032x}" for i in range(50)]
    for k in keys[:30]:
        workspace.put_record("key", k, {"task": k, "result": None})
    got = workspace.get_records("key", keys)
    assert sorted(got) == keys[:30]
    assert got[keys[3]] == {"task": keys[3], "result": None}
    assert sorted(workspace.iter_records("key")) == keys[:30]
    workspace.delete_record("key", keys[0])
    workspace.delete_record("key", keys[0])  # twice is fine
    workspace.delete_record("nokind", keys[0])
    assert workspace.get_record("key", keys[0]) is None
    assert sorted(workspace.iter_records("key")) == keys[1:30]
    assert list(workspace.iter_records("absent")) == []


def test_put_records_writes_one_file_under_every_name(workspace: DiskWorkspace) -> None:
    root = Path(workspace.root) / "records"
    workspace.put_record("key", "cc01", {"task": "old", "result": "r0"})  # an existing name is replaced
    names = [("resolved", "aa01"), ("task", "bb01"), ("key", "cc01")]
    workspace.put_records(names, {"task": "bb01", "result": "r1", "resolved": "aa01"})
    for kind, key in names:
        assert workspace.get_record(kind, key) == {"task": "bb01", "result": "r1", "resolved": "aa01"}
    # every name in one-character shards
    paths = [root / kind / key[:1] / f"{key}.json" for kind, key in names]
    assert len({p.stat().st_ino for p in paths}) == 1  # one file, three names
    assert all(sorted(os.listdir(p.parent)) == [p.name] for p in paths)  # no temporary file left
    # The names stay independent: replacing or deleting one leaves the others as they were.
    workspace.put_record("key", "cc01", {"task": "newer", "result": "r2"})
    workspace.delete_record("resolved", "aa01")
    assert workspace.get_record("task", "bb01") == {"task": "bb01", "result": "r1", "resolved": "aa01"}
    assert workspace.get_record("key", "cc01") == {"task": "newer", "result": "r2"}
    assert workspace.get_record("resolved", "aa01") is None


def test_names_written_by_an_earlier_version_under_wide_shards_are_read_replaced_and_deleted(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    # An earlier version kept every record under two-character shards.
    for kind, key, value in (
        ("key", "cc01", {"task": "old", "result": "r0"}),
        ("resolved", "aa01", {"result": "r0"}),
        ("task", "bb01", {"result": "r0"}),
    ):
        wide = root / "records" / kind / key[:2]
        wide.mkdir(parents=True)
        (wide / f"{key}.json").write_text(json.dumps(value))
    ws = DiskWorkspace(DiskWorkspaceSettings(directory=str(root)))
    assert ws.get_record("key", "cc01") == {"task": "old", "result": "r0"}
    assert ws.get_records("resolved", ["aa01", "aa02"]) == {"aa01": {"result": "r0"}}
    assert sorted(ws.iter_records("key")) == ["cc01"]
    assert ws.get_record("task", "bb01") == {"result": "r0"} and sorted(ws.iter_records("task")) == ["bb01"]
    ws.put_records([("task", "bb01"), ("key", "cc01")], {"task": "bb01", "result": "r1"})
    assert ws.get_record("key", "cc01") == {"task": "bb01", "result": "r1"}
    assert ws.get_record("task", "bb01") == {"task": "bb01", "result": "r1"}
    for kind, key in (("key", "cc01"), ("task", "bb01")):
        assert not (root / "records" / kind / key[:2] / f"{key}.json").exists()  # the older copy is never read back
        assert (root / "records" / kind / key[:1] / f"{key}.json").exists()
    assert sorted(ws.iter_records("task")) == ["bb01"]
    assert sorted(ws.iter_records("key")) == ["cc01"]
    ws.delete_record("resolved", "aa01")
    assert ws.get_record("resolved", "aa01") is None and list(ws.iter_records("resolved")) == []


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".hidden", "x" * 300, "a\x00b"])
def test_unsafe_names_are_refused(workspace: DiskWorkspace, bad: str) -> None:
    with pytest.raises(MisenError, match="not a valid name"):
        workspace.put_record("task", bad, {})
    with pytest.raises(MisenError, match="not a valid name"):
        workspace.put_record(bad, "abc", {})
    assert workspace.has_result(bad) is False
    assert not Path(workspace.root).exists()


def test_queries_never_write(workspace: DiskWorkspace, snapshot_tree) -> None:
    from misen.workspace import LockHolder

    root = Path(workspace.root)
    # on a workspace that does not exist yet
    assert workspace.get_record("task", "abc") is None
    assert workspace.get_records("task", ["abc", "abd"]) == {}
    assert workspace.has_result("abc") is False
    assert workspace.open_result("abc") is None
    assert workspace.lock_holder("abc") is None
    assert workspace.list_logs("task", "abc") == []
    assert list(workspace.iter_results()) == []
    assert not root.exists()
    # on a populated one
    workspace.put_record("task", "abc", {"result": "r"})
    with workspace.lock("abc", LockHolder.current()):
        pass
    workspace.log_path("task", "abc", "1").write_text("log")
    before = snapshot_tree(root)
    assert workspace.get_record("task", "abc") == {"result": "r"}
    assert workspace.lock_holder("abc") is None
    assert [e.attempt for e in workspace.list_logs("task", "abc")] == ["1"]
    assert workspace.has_result("r") is False
    assert snapshot_tree(root) == before


def test_directory_is_absolute_and_travels_in_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "proj"
    (project / "sub").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname='p'\n")
    monkeypatch.chdir(project / "sub")
    from misen.session import current_session, make_session, set_current_session

    set_current_session(make_session())  # a fresh session: the project root is looked up from here
    ws = DiskWorkspace(DiskWorkspaceSettings())
    assert ws.root == str(project.resolve() / ".misen")
    ws2 = DiskWorkspace(DiskWorkspaceSettings(directory="data/ws"))
    assert ws2.root == str(project.resolve() / "data" / "ws")
    spec = ws2.spec()
    assert spec["type"] == "disk" and spec["settings"]["directory"] == ws2.root
    monkeypatch.chdir(tmp_path)
    set_current_session(make_session())
    reopened = current_session().open_workspace(spec)
    assert isinstance(reopened, DiskWorkspace) and reopened.root == ws2.root


def test_settings_errors_name_the_key() -> None:
    from misen.errors import ConfigError
    from misen.settings import structure_settings

    with pytest.raises(ConfigError, match="director"):
        structure_settings(DiskWorkspaceSettings, {"directroy": "x"}, where=".misen.toml [workspace]")
    ws = DiskWorkspace(
        structure_settings(DiskWorkspaceSettings, {"directory": "/tmp/x", "fsync": False}, where="t")
    )
    assert ws.root == "/tmp/x" and ws.settings.fsync is False


def test_registered_as_disk() -> None:
    from misen.session import registry

    assert registry().get("workspace", "disk") is DiskWorkspace


def test_sweep_removes_old_half_written_files_only(workspace: DiskWorkspace) -> None:
    import time

    workspace.put_record("task", "ab12", {"result": "r"})
    shard = Path(workspace.root) / "records" / "task" / "a"
    old, new = shard / ".ab12.json.0123.tmp", shard / ".ab13.json.4567.tmp"
    old.write_text('{"half')
    new.write_text('{"half')
    past = time.time() - 7200
    os.utime(old, (past, past))
    assert [p for p, _ in workspace.sweep_tmp(older_than=3600, dry_run=True)] == [str(old)]
    assert old.exists()
    assert [p for p, _ in workspace.sweep_tmp(older_than=3600)] == [str(old)]
    assert not old.exists() and new.exists()
    assert list(workspace.iter_records("task")) == ["ab12"]


def test_default_workspace_is_disk_in_project_root(tmp_path: Path, python) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    (tmp_path / "pkg").mkdir()
    code = "from misen.runner import resolve_workspace\nws = resolve_workspace(None)\nprint(type(ws).__name__, ws.root)"
    proc = python(code, cwd=tmp_path / "pkg")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["DiskWorkspace", str(tmp_path.resolve() / ".misen")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg", "pyproject.toml"]  # opening wrote nothing


def test_logs_one_file_per_attempt_and_the_older_per_task_folders(tmp_path: Path) -> None:
    """A log is ``<key>~<attempt>.log`` in its shard (no folder per task); the logs of workspaces written with a
    folder per task (``<key>/<attempt>.log``) are still listed, and a key that prefixes another is not confused."""
    ws = DiskWorkspace(DiskWorkspaceSettings(directory=str(tmp_path / "ws")))
    new = ws.log_path("task", "abc", "20260102-000000-1-0")
    new.write_text("new")
    assert new.parent == tmp_path / "ws" / "logs" / "task" / "ab" and new.name == "abc~20260102-000000-1-0.log"
    ws.log_path("task", "abcd", "20260103-000000-1-0").write_text("other task")
    old = tmp_path / "ws" / "logs" / "task" / "ab" / "abc" / "20260101-000000-1-0.log"
    old.parent.mkdir()
    old.write_text("old")
    os.utime(old, (1, 1))
    logs = ws.list_logs("task", "abc")
    assert [(e.attempt, e.read()) for e in logs] == [("20260102-000000-1-0", "new"), ("20260101-000000-1-0", "old")]
    assert ws.latest_attempt("task", "abc") == "20260102-000000-1-0"
    assert [e.attempt for e in ws.list_logs("task", "abcd")] == ["20260103-000000-1-0"]


def test_unit_logs_shard_by_one_character_and_older_shards_are_still_listed(tmp_path: Path) -> None:
    ws = DiskWorkspace(DiskWorkspaceSettings(directory=str(tmp_path / "ws")))
    new = ws.log_path("unit", "abc", "20260102-000000-1-0")
    new.write_text("new")
    assert new.parent == tmp_path / "ws" / "logs" / "unit" / "a"
    old = tmp_path / "ws" / "logs" / "unit" / "ab" / "abc~20260101-000000-1-0.log"
    old.parent.mkdir()
    old.write_text("old")
    os.utime(old, (1, 1))
    ws.log_path("unit", "abd", "20260103-000000-1-0").write_text("another unit in the same shard")
    logs = ws.list_logs("unit", "abc")
    assert [(e.attempt, e.read()) for e in logs] == [("20260102-000000-1-0", "new"), ("20260101-000000-1-0", "old")]
