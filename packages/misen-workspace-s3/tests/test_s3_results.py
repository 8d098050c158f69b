"""Records and results of the S3 workspace: round trips, what another machine sees, the commit marker, the
local cache, and what never reaches the store or the workspace's spec (secrets)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from misen import cache
from misen.errors import ConfigError, ResultCorruptedError
from misen_workspace_s3 import S3Workspace


def test_records_round_trip_between_machines(make_ws: Callable[..., S3Workspace]) -> None:
    a, b = make_ws(), make_ws()
    a.put_record("task", "h1", {"result": "r1", "nested": {"x": [1, 2.5, None]}})
    a.put_record("key", "k1", {"task": "h1"})
    assert b.get_record("task", "h1") == {"result": "r1", "nested": {"x": [1, 2.5, None]}}
    assert sorted(b.iter_records("task")) == ["h1"]
    assert b.get_records("task", ["h1", "h2"]) == {"h1": {"result": "r1", "nested": {"x": [1, 2.5, None]}}}
    b.put_record("task", "h1", {"result": "r2"})
    assert a.get_record("task", "h1") == {"result": "r2"}
    a.delete_record("task", "h1")
    assert b.get_record("task", "h1") is None and list(b.iter_records("task")) == []
    assert b.get_record("key", "k1") == {"task": "h1"}


def test_record_layout_in_the_store(make_ws: Callable[..., S3Workspace]) -> None:
    ws = make_ws()
    ws.put_record("failure", "abc", {"error": "boom"})
    assert json.loads(ws.remote.read("records/failure/abc.json") or b"") == {"error": "boom"}


def test_many_records_at_once(make_ws: Callable[..., S3Workspace]) -> None:
    ws = make_ws()
    for i in range(30):
        ws.put_record("task", f"t{i:02d}", {"i": i})
    keys = [f"t{i:02d}" for i in range(0, 40, 3)]
    got = make_ws().get_records("task", keys)
    assert got == {k: {"i": int(k[1:])} for k in keys if int(k[1:]) < 30}


def test_result_round_trip_on_another_machine(make_ws: Callable[..., S3Workspace]) -> None:
    writer, reader = make_ws(), make_ws()
    value = {"weights": list(range(1000)), "name": "run-1", "blob": os.urandom(200_000)}
    h = cache.store(writer, value)
    assert reader.has_result(h)
    assert cache.load_hash(reader, h) == value
    assert h in set(reader.iter_results())
    assert cache.store(writer, dict(value)) == h  # content addressed: stored once


def test_second_load_reads_the_local_copy(make_ws: Callable[..., S3Workspace], backend: str) -> None:
    if backend == "file":
        pytest.skip("a file:// store is served in place: there is no download to avoid")
    writer, reader = make_ws(), make_ws()
    value = os.urandom(3 * 1024 * 1024)
    h = cache.store(writer, value)
    assert cache.load_hash(reader, h) == value
    local = reader.open_result(h)
    assert local is not None and local.is_relative_to(reader.cache)
    # Remove the data objects behind the workspace's back: only a local copy can still serve the value.
    for entry in reader.remote.find(f"results/{h}"):
        if not entry["name"].endswith("manifest.json"):
            reader.remote.delete(entry["name"])
    assert cache.load_hash(reader, h) == value
    with pytest.raises(ResultCorruptedError, match="missing its file"):
        make_ws().open_result(h)  # a fresh machine has no local copy: the damage is reported, never returned


def test_a_result_without_its_marker_is_invisible(
    make_ws: Callable[..., S3Workspace], tmp_path: Path
) -> None:
    ws = make_ws()
    h = cache.store(ws, [1, 2, 3])
    # An upload that stopped before the marker: data objects present, manifest absent.
    data = [e["name"] for e in ws.remote.find(f"results/{h}") if not e["name"].endswith("manifest.json")]
    assert data
    ws.remote.delete(f"results/{h}/manifest.json")
    other = make_ws()
    assert not other.has_result(h)
    assert h not in set(other.iter_results())
    assert other.open_result(h) is None
    assert cache.store(other, [1, 2, 3]) == h and other.has_result(h)  # a later save completes it
    assert cache.load_hash(make_ws(), h) == [1, 2, 3]


def test_delete_result(make_ws: Callable[..., S3Workspace]) -> None:
    a, b = make_ws(), make_ws()
    h = cache.store(a, "text")
    assert cache.load_hash(b, h) == "text"
    b.delete_result(h)
    assert not a.has_result(h) and a.remote.find(f"results/{h}") == []
    assert b.open_result(h) is None


def test_spec_reopens_the_workspace_and_holds_no_secret(
    make_ws: Callable[..., S3Workspace], backend: str
) -> None:
    from misen.workspace import Workspace

    ws = make_ws()
    spec = ws.spec()
    assert spec["type"] == "s3"
    text = json.dumps(spec)
    assert "misen-test-secret" not in text and "misen-test-key-id" not in text
    again = Workspace.from_spec(json.loads(text))
    assert isinstance(again, S3Workspace) and again.describe() == ws.describe()
    ws.put_record("task", "x", {"v": 1})
    assert again.get_record("task", "x") == {"v": 1}
    again.close()


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"url": ""}, "`url` is required"),
        ({"url": "memory://b/p", "lease_seconds": 0}, "lease_seconds"),
        ({"url": "memory://b/p", "retries": 0}, "retries"),
        ({"url": "memory://b/p", "log_upload_interval": -1}, "log_upload_interval"),
        ({"url": "nosuchproto://b/p"}, "nosuchproto"),
        ({"url": "memory://b/p", "bucket": "x"}, "unknown key 'bucket'"),
    ],
)
def test_bad_settings_are_one_clear_error(settings: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        S3Workspace(**settings)
    assert needle in str(info.value)


def test_a_plain_path_is_a_local_store(tmp_path: Path) -> None:
    ws = S3Workspace(url=str(tmp_path / "shared"), cache_dir=str(tmp_path / "c"))
    h = cache.store(ws, 42)
    assert (tmp_path / "shared" / "results" / h / "manifest.json").is_file()
    assert cache.load_hash(ws, h) == 42


def test_keys_cannot_escape_the_prefix(make_ws: Callable[..., S3Workspace]) -> None:
    ws = make_ws()
    for bad in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="cannot hold"):
            ws.put_record("task", bad, {})


def test_relative_paths_are_made_absolute_for_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ws = S3Workspace(url="shared/ws", cache_dir="cache")
    settings = ws.spec()["settings"]
    assert settings["url"] == f"file://{tmp_path}/shared/ws"
    assert settings["cache_dir"] == str(tmp_path / "cache")
    ws.put_record("task", "k", {"v": 1})
    monkeypatch.chdir("/")
    from misen.workspace import Workspace

    assert Workspace.from_spec(ws.spec()).get_record("task", "k") == {"v": 1}


def test_a_missing_bucket_is_named(moto_endpoint: str, aws_env: None, tmp_path: Path) -> None:
    from misen.workspace import LockHolder
    from misen_workspace_s3 import S3WorkspaceError

    ws = S3Workspace(url="s3://no-such-bucket-here/p", endpoint_url=moto_endpoint, cache_dir=str(tmp_path))
    assert ws.get_record("task", "x") is None
    for action in (
        lambda: ws.put_record("task", "x", {}),
        lambda: cache.store(ws, 1),
        lambda: ws.lock("k", LockHolder.current()).__enter__(),
    ):
        with pytest.raises(S3WorkspaceError, match="bucket 'no-such-bucket-here' does not exist"):
            action()
