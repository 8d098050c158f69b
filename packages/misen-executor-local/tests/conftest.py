"""Fixtures for the local executor's tests: a real project (its tasks package imported by worker processes from
the run's snapshot), a disk workspace per test, and a helper that runs tasks with a `LocalExecutor`."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HERE = Path(__file__).parent


class _Ran:
    """A `RunReport` plus what the run printed (``text``)."""

    def __init__(self, report: Any, text: str) -> None:
        self.report = report
        self.text = text

    def __getattr__(self, name: str) -> Any:
        return getattr(self.report, name)


def write_project(root: Path, package: str, source: str, extra: dict[str, str] | None = None) -> Path:
    """A minimal installable project at ``root`` with ``src/<package>/__init__.py`` holding ``source``."""
    (root / "src" / package).mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(f'[project]\nname = "{package}"\nversion = "0"\n')
    (root / "src" / package / "__init__.py").write_text(source)
    for rel, text in (extra or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture(scope="session")
def lx_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_project(
        tmp_path_factory.mktemp("lxproject"), "lxtasks", (HERE / "lx_task_module.py").read_text()
    )
    sys.path.insert(0, str(root / "src"))
    return root


@pytest.fixture
def lx(lx_project: Path) -> ModuleType:
    """The test tasks (the package ``lxtasks`` of the test project)."""
    import lxtasks  # type: ignore[import-not-found]

    return lxtasks  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def in_project(lx_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run each test from the test project, with no user or explicit configuration leaking in."""
    monkeypatch.chdir(lx_project)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("MISEN_CONFIG", raising=False)
    for name in ("OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ZE_AFFINITY_MASK"):
        monkeypatch.delenv(name, raising=False)
    from misen.session import make_session, use_session

    with use_session(make_session()):  # a fresh misen session for each test (`misen.testing`)
        yield lx_project


@pytest.fixture
def workspace(tmp_path: Path) -> Any:
    from misen_workspace_disk.workspace import DiskWorkspace

    return DiskWorkspace(directory=str(tmp_path / "ws"), fsync=False)


@pytest.fixture
def run_local(workspace: Any) -> Callable[..., Any]:
    """``run_local(tasks, **executor_settings)``: run with a fresh `LocalExecutor`; returns the `RunReport`.

    The report's printed lines are on ``report.text``.
    """
    from misen.reporting import PlainReporter
    from misen.runner import run
    from misen_executor_local import LocalExecutor

    def go(tasks: Any, **settings: Any) -> Any:
        settings.setdefault("grace_period", 2.0)
        stream = io.StringIO()
        report = run(
            tasks, executor=LocalExecutor(**settings), workspace=workspace, reporter=PlainReporter(stream)
        )
        return _Ran(report, stream.getvalue())

    return go


os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
