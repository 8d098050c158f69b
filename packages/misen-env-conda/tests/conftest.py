"""Fixtures of misen-env-conda's tests: a local conda channel and pixi.lock built here, and a project using them.

Nothing leaves the machine: the package is built by the test (`misen_env_conda.testing`), indexed into a
``file://`` channel, and locked; rattler installs it from there.
"""

from __future__ import annotations

import importlib
import io
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from misen_env_conda.testing import build_noarch_package, index_channel, write_lock

TASKS = """
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from misen import meta


@meta(id="CONDA-NATIVE", cache=True)
def native(n: int) -> dict:
    out = subprocess.run(["misen-demo-hello"], capture_output=True, text=True, check=True).stdout.strip()
    data = (Path(os.environ["CONDA_PREFIX"]) / "share" / "misen-demo" / "data.txt").read_text().strip()
    return {
        "n": n,
        "out": out,
        "data": data,
        "prefix": os.environ["CONDA_PREFIX"],
        "declared": os.environ.get("MISEN_DEMO_DECLARED"),
    }


@meta(id="CONDA-WHERE", cache=True)
def where(n: int) -> dict:
    return {"pid": os.getpid(), "prefix": os.environ["CONDA_PREFIX"]}


@meta(id="CONDA-AFTER", cache=True, environment="none")
def without_after(previous: dict) -> dict:
    return {
        "pid": os.getpid(),
        "prefix": os.environ.get("CONDA_PREFIX"),
        "declared": os.environ.get("MISEN_DEMO_DECLARED"),
        "on_path": previous["prefix"] in os.environ.get("PATH", ""),
    }


@meta(id="CONDA-OTHER", cache=True, environment="other")
def in_other(n: int) -> str | None:
    return os.environ.get("CONDA_DEFAULT_ENV")


@meta(id="CONDA-WITHOUT", cache=True, environment="none")
def without(n: int) -> str | None:
    return os.environ.get("CONDA_PREFIX")


@meta(id="CONDA-MISSING", cache=True, environment="gpu")
def in_missing(n: int) -> int:
    return n
"""


def demo_package(channel: Path, version: str, data: str) -> Path:
    """The test's conda package: an executable on PATH, a data file, and a declared activation variable."""
    return build_noarch_package(
        channel,
        "misen-demo",
        version,
        {
            "bin/misen-demo-hello": '#!/bin/sh\necho "hello from misen-demo in $CONDA_PREFIX"\n',
            "share/misen-demo/data.txt": data + "\n",
            "etc/conda/env_vars.d/misen-demo.json": '{"MISEN_DEMO_DECLARED": "declared-by-the-package"}',
        },
        executables=["bin/misen-demo-hello"],
    )


class CondaProject:
    """A throw-away project (src layout, disk workspace) with a pixi.lock locking the demo package."""

    def __init__(self, root: Path, channel: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.channel = channel
        self.module = f"condaproj_{uuid.uuid4().hex[:8]}"
        pkg = root / "src" / self.module
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "tasks.py").write_text(textwrap.dedent(TASKS))
        (root / "pyproject.toml").write_text(f'[project]\nname = "{self.module}"\nversion = "0"\n')
        self.write_config("")
        self.lock(version="1.0", data="forty-two")
        monkeypatch.chdir(root)
        monkeypatch.syspath_prepend(str(root / "src"))
        self.tasks: Any = importlib.import_module(f"{self.module}.tasks")
        from misen_workspace_disk.workspace import DiskWorkspace

        self.workspace = DiskWorkspace(directory=str(root / ".misen"), fsync=False)

    def write_config(self, environment: str) -> None:
        text = '[workspace]\ntype = "disk"\ndirectory = ".misen"\n'
        if environment:
            text += f"\n[environment]\n{environment}\n"
        (self.root / ".misen.toml").write_text(text)

    def lock(self, version: str, data: str) -> Path:
        """Build ``misen-demo`` ``version`` into the channel and lock it in environments default and other."""
        demo_package(self.channel, version, data)
        for old in (self.channel / "noarch").glob("misen-demo-*.tar.bz2"):
            if old.name != f"misen-demo-{version}-0.tar.bz2":
                old.unlink()
        index_channel(self.channel)
        return write_lock(self.root / "pixi.lock", self.channel, {"default": ["misen-demo"], "other": ["misen-demo"]})

    @property
    def envs(self) -> Path:
        return self.root / ".misen" / "envs"

    def prefixes(self) -> list[Path]:
        return sorted(p for p in self.envs.iterdir() if not p.name.startswith(".") and p.name != "pkgs")

    def run(self, tasks: Any, executor: Any = "local") -> Any:
        from misen.reporting import PlainReporter
        from misen.runner import run

        return run(tasks, executor=executor, workspace=self.workspace, reporter=PlainReporter(io.StringIO()))


@pytest.fixture
def conda_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CondaProject]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("MISEN_CONFIG", raising=False)
    monkeypatch.delenv("CONDA_PREFIX", raising=False)
    from misen.session import set_config_override

    set_config_override(None)
    yield CondaProject(tmp_path / "proj", tmp_path / "channel", monkeypatch)
    set_config_override(None)


@pytest.fixture(scope="session")
def conda_slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The real single-node SLURM cluster of misen-executor-slurm's tests (skips without slurm-wlm, munge, root)."""
    testing = pytest.importorskip("misen_executor_slurm.testing")
    reason = testing.missing_requirements()
    if reason:
        pytest.skip(reason)
    import os

    cluster = testing.SlurmTestCluster(tmp_path_factory.mktemp("condaslurm"), cluster_name=f"conda{os.getpid()}")
    cluster.start()
    try:
        with cluster.activate():
            yield cluster
    finally:
        cluster.stop()
