"""Native environments: what a task's process needs beyond the uv venv (a conda prefix built from ``pixi.lock``).

An environment plugin (an `Environment` registered with ``misen_add_environments``; misen-env-conda is one)
prepares a prefix when a run starts and answers with an `Activation`. The runner keeps one per environment name in ``Plan.activations``;
`misen.worker` applies the unit's activation in the process that runs it (the prefix's ``bin/`` ahead on
``PATH``, ``CONDA_PREFIX``, the packages' activation variables), so every executor that runs units through
``execute_payload`` (local, SLURM, any plugin) gets it without code of its own. The in-process executor applies
it to ``os.environ`` for the duration of each unit: programs the task starts and variables it reads see the
prefix, but libraries already loaded into the running Python do not change.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from misen import cache
from misen.errors import ConfigError, MisenError
from misen.session import current_session
from misen.settings import section_where, structure_settings

if TYPE_CHECKING:
    from misen.executor import Plan, WorkUnit
    from misen.tasks import Task
    from misen.workspace import Workspace

__all__ = [
    "Activation",
    "Environment",
    "activated",
    "activation_key",
    "apply_activation",
    "prepare_environments",
    "resolve_environment",
]

#: The name that turns environments off, in ``[environment] name`` and in ``@meta(environment=...)``.
NONE = "none"


@attrs.frozen
class Activation:
    """How to activate a prepared native environment in a task's process."""

    #: The plugin's kind of environment (``"conda"``).
    kind: str
    #: The environment's name (``"default"``).
    name: str
    #: A digest of what the environment holds (for conda: the lock's packages of this environment and platform).
    digest: str
    #: The prefix the environment lives in; a task reads it from ``CONDA_PREFIX``.
    prefix: str
    #: Directories put ahead of ``PATH``, in order.
    path: tuple[str, ...] = ()
    #: Variables set in the task's process (``CONDA_PREFIX`` and the packages' activation variables).
    env: Mapping[str, str] = attrs.field(factory=dict)
    #: Where it comes from, for people (``"pixi.lock, environment default, linux-64"``).
    source: str = ""

    def variables(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The variables to set on top of ``environ`` (``PATH`` with this environment's directories first)."""
        out = dict(self.env)
        rest = [p for p in environ.get("PATH", "").split(os.pathsep) if p and p not in self.path]
        out["PATH"] = os.pathsep.join([*self.path, *rest])
        return out

    def provenance(self) -> dict[str, str]:
        """What a stored result records about the environment it was computed in."""
        return {"kind": self.kind, "name": self.name, "digest": self.digest, "source": self.source}


def activation_key(unit: WorkUnit) -> str:
    """The key of the unit's activation in ``Plan.activations``: its root's ``@meta(environment=...)`` or ``""``."""
    return getattr(unit.root.meta, "environment", None) or ""


class Environment:
    """Base class of native-environment plugins (registered with ``misen_add_environments``).

    Class attributes: ``PLUGIN_NAME`` (``"conda"``, chosen by ``[environment] type``), optional ``ALIASES``, and
    ``Settings`` (the attrs class the rest of the ``[environment]`` section is structured into).
    """

    PLUGIN_NAME: ClassVar[str] = ""
    ALIASES: ClassVar[tuple[str, ...]] = ()
    Settings: ClassVar[type[Any]]

    def __init__(self, settings: Any = None, **overrides: Any) -> None:
        if settings is None:
            settings = structure_settings(self.Settings, overrides, where=f"{type(self).__name__}(...)")
        elif overrides:
            settings = attrs.evolve(settings, **overrides)
        self.settings = settings

    def prepare(
        self, *, project: Path, snapshot: Path | None, name: str | None, workspace: Workspace, build: bool = True
    ) -> Activation | None:
        """Prepare environment ``name`` for a run and say how to activate it.

        Args:
            project: The project's root directory.
            snapshot: The run's code snapshot (it holds copies of ``pixi.lock``/``pixi.toml``), or ``None`` when
                units run from the live tree; read lock files from here first.
            name: The environment a task named with ``@meta(environment=...)``, or ``None`` for the configured
                default.
            workspace: The run's workspace (a default place for prefixes).
            build: ``False`` to only describe the environment (digest, prefix) without building anything.

        Returns:
            The `Activation`, or ``None`` when there is nothing to do (no lock file, environments turned off).
        """
        raise NotImplementedError


def resolve_environment() -> Environment | None:
    """The configured environment plugin: ``[environment] type``, else the only one installed, else ``None``."""
    settings = current_session().settings
    section = dict(settings.environment)
    where = section_where(settings, "environment")
    kind = section.pop("type", None)
    if kind is None:
        table = current_session().registry.entries("environment")  # the names only: nothing is imported yet
        names = sorted({cls.PLUGIN_NAME for cls in table.values()})
        if not names:
            return None
        if len(names) > 1:
            raise ConfigError(f"{where}: several environment plugins are installed ({', '.join(names)}); choose one with type = ...")
        kind = names[0]
    if not isinstance(kind, str):
        raise ConfigError(f"{where}: type must be a string, got {kind!r}")
    cls = current_session().registry.get("environment", kind)
    return cls(structure_settings(cls.Settings, section, where=where))  # type: ignore[no-any-return]


def prepare_environments(plan: Plan, project: Path, workspace: Workspace) -> None:
    """Ask the environment plugin for every environment the plan's units name; fill ``plan.activations``.

    Errors (a malformed lock, an unknown environment…) propagate as `misen.errors.MisenError`: nothing runs.
    """
    keys = sorted({activation_key(u) for u in plan.units.values()} - {NONE})
    if not keys:
        return
    env = resolve_environment()
    if env is None:
        if any((base / "pixi.lock").is_file() for base in (plan.snapshot, project) if base is not None):
            print(
                "misen: pixi.lock found, but no environment plugin is installed: tasks run without its conda "
                'environment (install it with `pip install "misen[conda]"`)',
                file=sys.stderr,
            )
        return
    for key in keys:
        act = env.prepare(project=project, snapshot=plan.snapshot, name=key or None, workspace=workspace, build=True)
        if act is not None:
            plan.activations[key] = act


def current_activation(
    task: Task[Any], project: Path, workspace: Workspace, *, build: bool = False
) -> Activation | None:
    """The activation ``task`` runs in now (``why`` compares it without building; ``verify`` builds and applies it)."""
    key = getattr(task.meta, "environment", None) or ""
    if key == NONE:
        return None
    env = resolve_environment()
    if env is None:
        return None
    return env.prepare(project=project, snapshot=None, name=key or None, workspace=workspace, build=build)


def explain_lines(task: Task[Any], workspace: Workspace) -> list[str]:
    """``why``'s lines about the native environment: the current one, and whether the stored result's differs."""
    try:
        act = current_activation(task, current_session().project_root(), workspace)
    except MisenError as exc:
        return [f"  native environment: {exc}"]
    prov = (cache.provenance(workspace, task) or {}) if task.cacheable else {}
    stored = prov.get("native_environment") or None
    lines: list[str] = []
    if act is not None:
        lines.append(f"  native environment: {act.kind} {act.name} ({act.source}) {act.digest[:12]}")
    stored_digest = stored.get("digest") if isinstance(stored, dict) else None
    current_digest = act.digest if act is not None else None
    if prov and stored_digest != current_digest:
        was = f"{str(stored_digest)[:12]} ({stored.get('source')})" if isinstance(stored, dict) else "none"
        now = f"{act.digest[:12]} ({act.source})" if act is not None else "none"
        lines.append(f"  the native environment changed since the stored result: was {was}, now {now}")
        lines.append(
            "    (a lock change does not make results stale: they are kept; `verify` recomputes them in the "
            "current environment)"
        )
    return lines


class _Applied:
    """The activation applied to this process's environment, and the variables it changed with their values
    before it (restored by the next `apply_activation`); kept on the session."""

    def __init__(self) -> None:
        self.saved: dict[str, str | None] = {}
        self.active: Activation | None = None


def _applied() -> _Applied:
    return current_session().memo("misen.environment.applied", _Applied)  # type: ignore[no-any-return]


def apply_activation(activation: Activation | None) -> None:
    """Make ``activation`` this process's native environment (``None``: none), undoing the previous one."""
    state = _applied()
    for key, value in state.saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    state.saved.clear()
    state.active = None
    if activation is None:
        return
    for key, value in activation.variables(os.environ).items():
        state.saved[key] = os.environ.get(key)
        os.environ[key] = value
    state.active = activation


def active_activation() -> Activation | None:
    """The activation applied in this process (recorded in the provenance of results computed here)."""
    return _applied().active


@contextlib.contextmanager
def activated(activation: Activation | None) -> Iterator[None]:
    """Apply ``activation`` for the duration of a block (the in-process executor, ``verify``)."""
    apply_activation(activation)
    try:
        yield
    finally:
        apply_activation(None)
