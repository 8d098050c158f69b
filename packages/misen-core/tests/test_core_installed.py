"""misen._installed: entry points from a per-user cache kept under a listing of sys.path, and the distribution names
of the environment digest, without reading every distribution's metadata."""

from __future__ import annotations

import os
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest
from misen import _installed


def _dist(site: Path, module: str, entry: str) -> Path:
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[misen_test_group]\n{entry} = {module}.hooks\n")
    return info


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MISEN_NO_PLUGIN_CACHE", raising=False)
    monkeypatch.setattr(sys, "path", [*sys.path, str(folder)])
    return folder


def _names() -> list[str]:
    return [name for name, _, _ in _installed.entry_points("misen_test_group")]


def test_the_second_start_reads_the_cache_and_a_new_distribution_is_seen(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dist(site, "plug_one", "one")
    assert _names() == ["one"]
    cache = Path(_installed._cache_file())
    assert cache.is_file() and cache.stat().st_mode & 0o077 == 0

    asked: list[str] = []
    real = _installed._from_metadata
    monkeypatch.setattr(_installed, "_from_metadata", lambda group: asked.append(group) or real(group))
    assert _names() == ["one"]
    assert asked == []  # the listing did not change: the cache answered

    _dist(site, "plug_two", "two")
    assert sorted(_names()) == ["one", "two"]
    assert asked == ["misen_test_group"]


def test_entry_points_rewritten_in_place_are_read_again(site: Path) -> None:
    info = _dist(site, "plug_one", "one")
    assert _names() == ["one"]
    before = os.stat(site).st_mtime_ns
    time.sleep(0.01)
    (info / "entry_points.txt").write_text("[misen_test_group]\nrenamed = plug_one.hooks\n")
    assert os.stat(site).st_mtime_ns == before  # the folder listing alone would not have told
    assert _names() == ["renamed"]


def test_a_cache_others_can_write_is_not_trusted(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _dist(site, "plug_one", "one")
    assert _names() == ["one"]
    cache = Path(_installed._cache_file())
    # Someone else's edit: the cache now names a module misen would import. Writable by the group, it is ignored.
    cache.write_text(cache.read_text().replace("plug_one.hooks", "evil.hooks"))
    cache.chmod(0o666)
    assert [value for _, value, _ in _installed.entry_points("misen_test_group")] == ["plug_one.hooks"]
    # Rewritten by misen, mode 0600 again.
    assert cache.stat().st_mode & 0o077 == 0


def test_a_damaged_cache_is_rebuilt(site: Path) -> None:
    _dist(site, "plug_one", "one")
    assert _names() == ["one"]
    cache = Path(_installed._cache_file())
    cache.write_text("{not json")
    assert _names() == ["one"]
    assert cache.read_text().startswith("{")


def test_the_cache_can_be_turned_off(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _dist(site, "plug_one", "one")
    monkeypatch.setenv("MISEN_NO_PLUGIN_CACHE", "1")
    assert _names() == ["one"]
    assert not Path(_installed._cache_file()).exists()


def test_a_zip_on_the_path_leaves_it_to_importlib_metadata(site: Path, tmp_path: Path) -> None:
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip archive
    sys.path.append(str(archive))
    assert _installed.distribution_names() is None
    _dist(site, "plug_one", "one")
    assert _names() == ["one"]
    assert not Path(_installed._cache_file()).exists()


def test_distribution_names_are_importlib_metadatas(site: Path) -> None:
    _dist(site, "plug_one", "one")
    expected = sorted(d._path.name for d in metadata.distributions())
    assert _installed.distribution_names() == expected
    assert "plug_one-0.1.dist-info" in expected


def test_load_follows_the_entry_point_syntax() -> None:
    assert _installed.load("os.path") is os.path
    assert _installed.load("os:path.join [extra]") is os.path.join
    with pytest.raises(ValueError, match="not an entry point value"):
        _installed.load("not valid!")


def test_the_importlib_metadata_backport_does_not_turn_the_cache_off(site: Path) -> None:
    # Imported by some libraries, it puts a finder of distributions on sys.meta_path that looks where a listing
    # looks.
    backport = pytest.importorskip("importlib_metadata")
    assert any(type(f).__module__ == backport.__name__ for f in sys.meta_path)
    _dist(site, "plug_one", "one")
    assert _names() == ["one"]
    assert Path(_installed._cache_file()).is_file()


def test_another_finder_of_distributions_leaves_it_to_importlib_metadata(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Finder:
        def find_spec(self, *args: object) -> None:
            return None

        def find_distributions(self, *args: object) -> list[object]:
            return []

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Finder()])
    _dist(site, "plug_one", "one")
    assert _names() == ["one"]
    assert not Path(_installed._cache_file()).exists()
