"""The `Session`: everything misen knows in one process, held in one object.

A session holds the configuration (which file, the settings read from it), the plugin registry with the
dispatch tables derived from it (hashers, serializers), the workspaces opened so far, and the project root. It is
built by `make_session`, passed explicitly from the runner through the executor to the worker, and found by the
lazy facades (``Task.result()``, ``Experiment.run()``, the CLI) through `current_session`, the one documented
slot of process-wide state in misen-core. `use_session` swaps it for a block (tests, embedding applications),
which is what the ``misen_session`` fixture of `misen.testing` does.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from misen.errors import MisenError
from misen.plugins import Registry, plugin_manager
from misen.settings import (
    Settings,
    config_files,
    read_settings,
    search_project_root,
    section_where,
    settings_key,
    structure_settings,
)

if TYPE_CHECKING:
    from misen.workspace import Workspace

__all__ = [
    "Session",
    "current_session",
    "find_project_root",
    "load_settings",
    "make_session",
    "project_root",
    "registry",
    "set_config_override",
    "set_current_session",
    "use_session",
]


class Session:
    """misen's state for one process (or one test): configuration, plugins, open workspaces.

    Build one with `make_session`. Every attribute is read-only from the outside; caches fill on first use.
    """

    def __init__(
        self, *, config: str | Path | None = None, plugins: Iterable[Any] = (), cwd: Path | None = None
    ) -> None:
        #: An explicit configuration file (``--config``): replaces the merge chain when set.
        self.config: Path | None = Path(config).expanduser() if config is not None else None
        #: Extra plugin objects registered beside the built-ins and entry points (tests, embedding code).
        self.extra_plugins: tuple[Any, ...] = tuple(plugins)
        self._cwd = cwd
        self._lock = threading.RLock()
        self._registry: Registry | None = None
        self._settings: tuple[Any, Settings] | None = None
        self._roots: dict[str, Path | None] = {}
        #: The resolved current directory, by name, for `project_root` outside any project.
        self._cwd_roots: dict[str, Path] = {}
        self._workspaces: dict[str, Workspace] = {}
        self._memos: dict[str, Any] = {}
        self._tracked: bool | None = None

    # --- plugins ----------------------------------------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        """The plugin registry: executors, workspaces, serializers and hashers by name (built on first use)."""
        reg = self._registry
        if reg is None:
            with self._lock:
                if self._registry is None:
                    self._registry = Registry(plugin_manager(self.extra_plugins))
                reg = self._registry
        return reg

    @property
    def hook(self) -> Any:
        """The plugin manager's hook caller (``session.hook.misen_unit_started(...)``)."""
        return self.registry.pm.hook

    # --- configuration ----------------------------------------------------------------------------------------

    @property
    def cwd(self) -> Path:
        return self._cwd or Path.cwd()

    def find_project_root(self, start: Path | None = None) -> Path | None:
        """The nearest directory at or above ``start`` (default: the current directory) holding ``.misen.toml``
        or ``pyproject.toml``; ``None`` when there is none."""
        if start is None and self._cwd is None:
            # The common case, asked for every task (a result's provenance): looked up by the current directory's
            # name, without building a Path first.
            key = os.getcwd()
            if key in self._roots:
                return self._roots[key]
            here = Path(key)
        else:
            here = start or self.cwd
            if not here.is_absolute():
                here = self.cwd / here
            key = str(here)
        # Resolved only once per directory: resolving walks every component of the path.
        if key not in self._roots:
            self._roots[key] = search_project_root(here.resolve())
        return self._roots[key]

    def project_root(self, start: Path | None = None) -> Path:
        """`find_project_root`, or the current directory when no project file is found."""
        found = self.find_project_root(start)
        if found is not None:
            return found
        if start is None and self._cwd is None:
            # No project file: the current directory, resolved once per directory (asked for every task).
            key = os.getcwd()
            here = self._cwd_roots.get(key)
            if here is None:
                here = self._cwd_roots[key] = Path(key).resolve()
            return here
        return (start or self.cwd).resolve()

    @property
    def settings(self) -> Settings:
        """The effective configuration, re-read when one of its files changes."""
        files = config_files(self.config, self.project_root())
        key = settings_key(files)
        cached = self._settings
        if cached is not None and cached[0] == key:
            return cached[1]
        settings = read_settings(files)
        self._settings = (key, settings)
        return settings

    def code_changes_tracked(self) -> bool:
        """``[cache] code_changes`` is ``"track"`` (read once per session: it is asked for every task made; a
        broken configuration counts as the default here, and is reported where configuration is used)."""
        tracked = self._tracked
        if tracked is None:
            try:
                tracked = self.settings.cache.code_changes == "track"
            except Exception:
                tracked = True
            self._tracked = tracked
        return tracked

    def memo(self, name: str, factory: Any) -> Any:
        """Per-session state of a module, made by ``factory()`` on first use (e.g. `misen.fingerprint`'s caches of
        parsed source files): a fresh session starts with none of it."""
        value = self._memos.get(name)
        if value is None:
            with self._lock:
                value = self._memos.get(name)
                if value is None:
                    value = self._memos[name] = factory()
        return value

    # --- backends ---------------------------------------------------------------------------------------------

    def default_backend(self, kind: str) -> str:
        """The name of the ``kind`` (``"executor"`` or ``"workspace"``) backend used when none is chosen:
        ``local``/``disk`` when installed, else the built-in ``in-process``/``memory``."""
        table = self.registry.entries(kind)  # the names only: nothing is imported
        preferred, fallback = ("local", "in-process") if kind == "executor" else ("disk", "memory")
        return preferred if preferred in table else fallback

    def backend(self, kind: str, name: str | None = None) -> tuple[type[Any], Any, str | None]:
        """``(class, settings, note)`` of the ``kind`` backend chosen by ``name`` (or by the configuration).

        The ``[executor]``/``[workspace]`` section applies to the backend chosen by any route: its ``type`` line,
        ``--executor-type``/``--workspace-type``, or a name passed in Python. A key the chosen backend does not
        know is an error naming the file, the section and the key. A section that names *another* backend with
        its own ``type`` is not applied; ``note`` says so (``misen config`` shows it).
        """
        if kind not in ("executor", "workspace"):
            raise MisenError(f"no backend kind {kind!r}: executor or workspace")
        settings = self.settings
        section = settings.executor if kind == "executor" else settings.workspace
        where = section_where(settings, kind)
        chosen = name if name is not None else section.get("type", self.default_backend(kind))
        cls = self.registry.get(kind, chosen)
        configured = section.get("type")
        note = None
        data = {k: v for k, v in section.items() if k != "type"}
        if configured is not None:
            try:
                same = self.registry.get(kind, configured) is cls
            except MisenError:
                same = False
            if not same:
                note = f"{where} is written for the {configured!r} {kind} and is not applied to {cls.PLUGIN_NAME!r}"
                data = {}
        return cls, structure_settings(cls.Settings, data, where=where), note

    # --- workspaces -------------------------------------------------------------------------------------------

    def open_workspace(self, spec: dict[str, Any]) -> Workspace:
        """The workspace described by ``spec`` (`misen.Workspace.spec`), opened once per session."""
        key = _spec_key(spec)
        ws = self._workspaces.get(key)
        if ws is None:
            with self._lock:
                ws = self._workspaces.get(key)
                if ws is None:
                    cls = self.registry.get("workspace", spec["type"])
                    settings = structure_settings(
                        cls.Settings, spec.get("settings", {}), where="workspace spec"
                    )
                    ws = self._workspaces[key] = cls(settings)
        return ws

    def adopt_workspace(self, workspace: Workspace) -> Workspace:
        """Make ``workspace`` what `open_workspace` returns for its spec (so units of a run that open the run's
        workspace from its spec in this process get this very instance, e.g. a memory workspace)."""
        key = _spec_key(workspace.spec())
        with self._lock:
            return self._workspaces.setdefault(key, workspace)

    def open_workspaces(self) -> list[Workspace]:
        return list(self._workspaces.values())

    def close(self) -> None:
        """Close every workspace this session opened."""
        for ws in self.open_workspaces():
            with contextlib.suppress(Exception):
                ws.close()
        self._workspaces.clear()


def _spec_key(spec: dict[str, Any]) -> str:
    return repr((spec.get("type"), sorted((spec.get("settings") or {}).items())))


def make_session(
    *, config: str | Path | None = None, plugins: Iterable[Any] = (), cwd: Path | None = None
) -> Session:
    """A new session. ``config`` replaces the configuration chain (like ``--config``); ``plugins`` are extra
    plugin objects registered beside the installed ones; ``cwd`` fixes where the project root is searched from."""
    return Session(config=config, plugins=plugins, cwd=cwd)


class _Slot:
    """The one process-wide slot: the current session (created on first use)."""

    __slots__ = ("lock", "session")

    def __init__(self) -> None:
        self.session: Session | None = None
        self.lock = threading.Lock()


_SLOT = _Slot()


def current_session() -> Session:
    """The session the lazy facades use: the one set by `use_session`/`set_current_session`, else a default
    session made on first use."""
    session = _SLOT.session
    if session is None:
        with _SLOT.lock:
            if _SLOT.session is None:
                _SLOT.session = make_session()
            session = _SLOT.session
    return session


def set_current_session(session: Session | None) -> Session | None:
    """Make ``session`` the current one (``None``: a fresh default on next use); returns the previous one."""
    with _SLOT.lock:
        previous, _SLOT.session = _SLOT.session, session
    return previous


@contextlib.contextmanager
def use_session(session: Session) -> Iterator[Session]:
    """Make ``session`` current for the ``with`` block, then restore the previous one."""
    previous = set_current_session(session)
    try:
        yield session
    finally:
        set_current_session(previous)


# --- facades over the current session, for code that has no session at hand --------------------------------------


def registry() -> Registry:
    """The current session's plugin registry."""
    return current_session().registry


def find_project_root(start: Path | None = None) -> Path | None:
    """The current session's project root search (`Session.find_project_root`)."""
    return current_session().find_project_root(start)


def project_root(start: Path | None = None) -> Path:
    """The current session's project root, or the current directory when no project file is found
    (`Session.project_root`)."""
    return current_session().project_root(start)


def load_settings(config: str | Path | None = None) -> Settings:
    """The effective configuration: the current session's, or that of an explicit file."""
    if config is not None:
        return make_session(config=config).settings
    return current_session().settings


def set_config_override(path: str | Path | None) -> None:
    """Use ``path`` as the only configuration file from now on (what ``--config`` does): a new current session
    with that configuration (``None``: the usual chain again)."""
    set_current_session(make_session(config=path))
