"""Configuration: the merge chain, explicit files, and clear errors for every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
from misen.errors import ConfigError, PluginNotFoundError
from misen.runner import resolve_executor
from misen.session import load_settings, set_config_override
from misen.testing.fixtures import start_session


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_project_overrides_user(isolated_project: Path, tmp_path: Path) -> None:
    write(tmp_path / "xdg" / "misen.toml", '[executor]\ntype = "in-process"\n[cache]\ncode_changes = "ignore"\n')
    write(isolated_project / ".misen.toml", '[cache]\ncode_changes = "track"\n')
    s = load_settings()
    assert s.executor["type"] == "in-process"
    assert s.cache.code_changes == "track"
    assert s.source("cache", "code_changes").endswith(".misen.toml")
    assert s.source("executor", "type").endswith("misen.toml") and "xdg" in s.source("executor", "type")


def test_explicit_config_replaces_the_chain(isolated_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(isolated_project / ".misen.toml", '[executor]\ntype = "in-process"\n')
    env_cfg = write(tmp_path / "env.toml", '[cache]\ncode_changes = "ignore"\n')
    cli_cfg = write(tmp_path / "cli.toml", '[workspace]\ntype = "memory"\n')
    monkeypatch.setenv("MISEN_CONFIG", str(env_cfg))
    s = load_settings()
    assert s.executor == {} and s.cache.code_changes == "ignore"
    set_config_override(cli_cfg)
    s = load_settings()
    assert s.workspace == {"type": "memory"} and s.cache.code_changes == "track" and s.executor == {}


def test_another_backend_type_replaces_the_lower_section(isolated_project: Path, tmp_path: Path) -> None:
    write(tmp_path / "xdg" / "misen.toml", '[workspace]\ntype = "memory"\nname = "user"\n')
    write(isolated_project / ".misen.toml", '[workspace]\ntype = "other"\n')
    assert load_settings().workspace == {"type": "other"}


def test_unknown_section_names_file(isolated_project: Path) -> None:
    cfg = write(isolated_project / ".misen.toml", "[executr]\ntype = 'local'\n")
    with pytest.raises(ConfigError, match=r"\.misen\.toml: unknown section \[executr\]") as info:
        load_settings()
    assert str(cfg) in str(info.value)


def test_bad_toml(isolated_project: Path) -> None:
    write(isolated_project / ".misen.toml", "[executor\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings()


def test_unknown_key_names_file_section_and_key(isolated_project: Path) -> None:
    write(isolated_project / ".misen.toml", '[executor]\ntype = "in-process"\ncaptur = true\n')
    with pytest.raises(ConfigError) as info:
        resolve_executor()
    msg = str(info.value)
    assert ".misen.toml" in msg and "[executor]" in msg and "'captur'" in msg and "capture" in msg


def test_wrong_type_names_the_key(isolated_project: Path) -> None:
    write(isolated_project / ".misen.toml", '[cache]\ncode_changes = "sometimes"\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "[cache]" in str(info.value) and "code_changes" in str(info.value)


def test_unknown_backend_lists_installed_and_provider(isolated_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    with pytest.raises(PluginNotFoundError) as info:
        resolve_executor("nonesuch")
    assert "in-process" in str(info.value)
    # With only the built-ins, a known backend from another package says what to install.
    monkeypatch.setenv("MISEN_NO_ENTRY_POINTS", "1")
    start_session()
    try:
        write(isolated_project / ".misen.toml", '[executor]\ntype = "slurm"\n')
        with pytest.raises(PluginNotFoundError) as info:
            resolve_executor()
        assert "installed: in-process" in str(info.value) and 'pip install "misen[slurm]"' in str(info.value)
    finally:
        monkeypatch.delenv("MISEN_NO_ENTRY_POINTS")
        start_session()


def test_names_accept_underscores(isolated_project: Path) -> None:
    assert resolve_executor("in_process").PLUGIN_NAME == "in-process"
    assert resolve_executor("In-Process").PLUGIN_NAME == "in-process"


def test_missing_explicit_file(tmp_path: Path) -> None:
    set_config_override(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()


def test_settings_built_without_cattrs_equal_what_cattrs_builds() -> None:
    # Scalar settings with values of the right types skip the converter (its import costs every start); they must
    # come out exactly as the converter makes them, whether or not the classes' annotations were resolved.
    import attrs
    from misen import settings as S

    reg = start_session().registry
    backends = {**reg.executors(), **reg.workspaces(), **reg.environments()}
    classes = [S.CacheSettings, *(c.Settings for c in backends.values() if c.PLUGIN_NAME != "s3")]
    fast_paths = 0
    for resolved in (False, True):
        S._plain_fields.cache_clear()
        for cls in dict.fromkeys(classes):
            if resolved:
                attrs.resolve_types(cls)
            data = {k: (str(v) if isinstance(v, Path) else v) for k, v in S.converter().unstructure(cls()).items()}
            plain = S._unstructure_plain(cls())
            assert plain is None or plain == data, cls
            built = S._structure_plain(cls, data)
            assert built is None or built == S.converter().structure(dict(data), cls), cls
            fast_paths += built is not None
    assert fast_paths >= 8  # the built-in backends, disk, conda and [cache] at least


def test_a_wrong_value_still_gets_the_converters_message(tmp_path: Path) -> None:
    from misen.settings import CacheSettings, structure_settings

    assert structure_settings(CacheSettings, {"code_changes": "ignore"}, where="x").code_changes == "ignore"
    with pytest.raises(ConfigError, match=r"x: key 'code_changes'"):
        structure_settings(CacheSettings, {"code_changes": "sometimes"}, where="x")
    with pytest.raises(ConfigError, match="unknown key 'nope'"):
        structure_settings(CacheSettings, {"nope": 1}, where="x")
