"""Bad input ends in one clear line naming what and where, nothing runs, and no half-built prefix is left."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from misen import cache
from misen.errors import MisenError
from misen.tasks import Task


def _fails(p: Any, task: Task[Any], *expected: str) -> str:
    with pytest.raises(MisenError) as info:
        p.run(task)
    message = str(info.value)
    assert "\n" not in message, message
    for text in expected:
        assert text in message, message
    assert not task.is_cached(workspace=p.workspace) and cache.failure(p.workspace, task) is None  # nothing ran
    return message


def _no_prefix_left(p: Any) -> None:
    if p.envs.exists():
        assert p.prefixes() == [], p.prefixes()
        assert not list(p.envs.glob(".tmp-*"))


def test_malformed_lock(conda_project: Any) -> None:
    p = conda_project
    (p.root / "pixi.lock").write_text("version: 6\nenvironments: [unclosed\n")
    _fails(p, Task(p.tasks.native, n=1), "pixi.lock: not a pixi.lock that can be read")


def test_unknown_environment(conda_project: Any) -> None:
    p = conda_project
    _fails(p, Task(p.tasks.in_missing, n=1), "no environment 'gpu' in the lock (it has: default, other)")
    p.write_config('name = "cuda"')
    _fails(p, Task(p.tasks.native, n=1), "no environment 'cuda'")


def test_platform_not_in_the_lock(conda_project: Any) -> None:
    p = conda_project
    p.write_config('platform = "osx-arm64"')
    _fails(p, Task(p.tasks.native, n=1), "not locked for platform osx-arm64 (it is locked for: linux-64)")


def test_unknown_setting(conda_project: Any) -> None:
    p = conda_project
    p.write_config('nmae = "default"')
    _fails(p, Task(p.tasks.native, n=1), ".misen.toml: [environment]: unknown key 'nmae'")


def test_unknown_environment_type(conda_project: Any) -> None:
    p = conda_project
    p.write_config('type = "pixi"')
    _fails(p, Task(p.tasks.native, n=1), "unknown environment type 'pixi' (installed: conda)")


def test_registered_as_a_plugin() -> None:
    from misen.session import registry
    from misen_env_conda.environment import CondaEnvironment

    assert registry().get("environment", "conda") is CondaEnvironment
    assert ("environment", "conda") in {(i.kind, i.name) for i in registry().infos()}


def test_package_that_cannot_be_fetched(conda_project: Any) -> None:
    p = conda_project
    (p.channel / "noarch" / "misen-demo-1.0-0.tar.bz2").unlink()
    _fails(p, Task(p.tasks.native, n=1), "cannot install the conda environment of pixi.lock, environment default")
    _no_prefix_left(p)


def test_pypi_entries_are_refused(conda_project: Any) -> None:
    p = conda_project
    rec = json.loads((p.channel / "noarch" / "repodata.json").read_text())["packages"]["misen-demo-1.0-0.tar.bz2"]
    url = (p.channel / "noarch" / "misen-demo-1.0-0.tar.bz2").as_uri()
    wheel = "https://files.example.invalid/requests-2.31.0-py3-none-any.whl"
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
                  - pypi: {wheel}
            packages:
            - conda: {url}
              sha256: {rec["sha256"]}
              md5: {rec["md5"]}
              subdir: noarch
              noarch: generic
              size: {rec["size"]}
            - pypi: {wheel}
              name: requests
              version: 2.31.0
              sha256: 58cd2187c01e70e6e26505bca751777aa9f2ee0b7f4300988b709f44e013003f
            """
        )
    )
    _fails(p, Task(p.tasks.native, n=1), "locks PyPI packages (requests 2.31.0)", "uv.lock")
    _no_prefix_left(p)


@contextlib.contextmanager
def _small_disk(path: Path, size: str) -> Iterator[None]:
    path.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({done.stderr.decode().strip()})")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_disk(conda_project: Any, tmp_path: Path) -> None:
    from misen_env_conda.testing import build_noarch_package, index_channel, write_lock

    p = conda_project
    build_noarch_package(p.channel, "misen-big", "1.0", {"share/misen-big/blob": os.urandom(2 * 2**20)})
    index_channel(p.channel)
    write_lock(p.root / "pixi.lock", p.channel, {"default": ["misen-demo", "misen-big"]})
    small = tmp_path / "small"
    p.write_config(f'location = "{small}"')
    with _small_disk(small, "512k"):
        _fails(p, Task(p.tasks.native, n=1), "no space left on the device of", str(small))
        assert sorted(x.name for x in small.iterdir() if not x.name.startswith(".")) in ([], ["pkgs"])
        assert not list(small.glob(".tmp-*"))
