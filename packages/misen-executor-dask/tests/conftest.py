"""Fixtures of the Dask executor's tests: a real project (its tasks imported by the units' processes from the
run's snapshot), a disk workspace per test, and one real two-worker Dask cluster on loopback for the session."""

from __future__ import annotations

import io
import os
import signal as _signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

# dask-jobqueue replaces the process's SIGINT handler with sys.exit when it is imported (its runner module). Import it
# once here and put the test process's handler back, so later tests that send SIGINT still get KeyboardInterrupt.
_previous_sigint = _signal.getsignal(_signal.SIGINT)
try:
    import dask_jobqueue  # noqa: F401
except ImportError:
    pass
finally:
    _signal.signal(_signal.SIGINT, _previous_sigint)


HERE = Path(__file__).parent


class _Ran:
    """A `RunReport` plus what the run printed (``text``)."""

    def __init__(self, report: Any, text: str) -> None:
        self.report = report
        self.text = text

    def __getattr__(self, name: str) -> Any:
        return getattr(self.report, name)


def write_project(root: Path, package: str, source: str) -> Path:
    """A minimal project at ``root`` with ``src/<package>/__init__.py`` holding ``source``."""
    (root / "src" / package).mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(f'[project]\nname = "{package}"\nversion = "0"\n')
    (root / "src" / package / "__init__.py").write_text(source)
    return root


@pytest.fixture(scope="session")
def dk_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_project(tmp_path_factory.mktemp("dkproject"), "dktasks", (HERE / "dk_task_module.py").read_text())
    sys.path.insert(0, str(root / "src"))
    return root


@pytest.fixture
def dk(dk_project: Path) -> ModuleType:
    """The test tasks (the package ``dktasks`` of the test project)."""
    import dktasks  # type: ignore[import-not-found]

    return dktasks  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def in_project(dk_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run each test from the test project, with no user or explicit configuration leaking in."""
    monkeypatch.chdir(dk_project)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("MISEN_CONFIG", raising=False)
    for name in ("OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ZE_AFFINITY_MASK"):
        monkeypatch.delenv(name, raising=False)
    from misen.session import make_session, use_session

    with use_session(make_session()):  # a fresh misen session for each test
        yield dk_project


@pytest.fixture
def workspace(tmp_path: Path) -> Any:
    from misen_workspace_disk.workspace import DiskWorkspace

    return DiskWorkspace(directory=str(tmp_path / "ws"), fsync=False)


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[Any]:
    """A real `distributed.LocalCluster`: two worker processes declaring one CPU each, scheduler on 127.0.0.1.

    Started by hand, as a user would, and reached by address: misen leaves it running after each run.
    """
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        resources={"CPU": 1},
    )
    try:
        yield cluster
    finally:
        cluster.close(timeout=30)


@pytest.fixture
def run_dask(workspace: Any) -> Callable[..., Any]:
    """``run_dask(tasks, **executor_settings)``: run with a fresh `DaskExecutor`; returns the `RunReport`.

    What the run printed is on ``report.text``.
    """
    from misen.reporting import PlainReporter
    from misen.runner import run
    from misen_executor_dask import DaskExecutor

    def go(tasks: Any, **settings: Any) -> Any:
        settings.setdefault("grace_period", 2.0)
        stream = io.StringIO()
        report = run(tasks, executor=DaskExecutor(**settings), workspace=workspace, reporter=PlainReporter(stream))
        return _Ran(report, stream.getvalue())

    return go


os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
