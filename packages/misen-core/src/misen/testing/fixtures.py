"""pytest fixtures that give a test its own misen session (loaded automatically as the ``misen`` pytest plugin).

``misen_session``: a fresh `misen.session.Session` (its own plugin registry, configuration and open workspaces),
current for the duration of the test; the previous session is restored afterwards. No test needs to reset any
of misen's internals.

``misen_project``: a fresh project directory (with a ``pyproject.toml``) as the current directory, no user or
explicit configuration leaking in (``XDG_CONFIG_HOME`` points into the test's temporary directory,
``MISEN_CONFIG`` is unset), and a fresh session rooted there. Returns the project directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from misen.session import Session, make_session, set_current_session, use_session

__all__ = ["misen_project", "misen_session", "start_session"]


@pytest.fixture
def misen_session() -> Iterator[Session]:
    """A fresh misen session, current for this test."""
    session = make_session()
    with use_session(session):
        yield session
    session.close()


@pytest.fixture
def misen_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh project directory as cwd, isolated configuration, and a fresh session for it."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "scratch"\nversion = "0"\n')
    monkeypatch.chdir(project)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("MISEN_CONFIG", raising=False)
    session = make_session()
    with use_session(session):
        yield project
    session.close()


def start_session(*plugins: object) -> Session:
    """Make a fresh session with ``plugins`` registered beside the installed ones current for the rest of the
    test (the ``misen_session``/``misen_project`` fixtures restore the session they replaced at teardown)."""
    session = make_session(plugins=plugins)
    set_current_session(session)
    return session
