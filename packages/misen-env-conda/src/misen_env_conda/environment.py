"""From a run's ``pixi.lock`` to the `misen.environment.Activation` every task process applies."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from misen.environment import Activation, Environment
from misen.errors import ConfigError

from misen_env_conda.settings import CondaSettings

__all__ = ["LOCK_FILE", "CondaEnvironment", "prefix_location"]

LOCK_FILE = "pixi.lock"


def prefix_location(settings: CondaSettings, project: Path, workspace: Any) -> Path:
    """Where prefixes live: ``[environment] location``, else ``envs`` in the workspace, else the user cache."""
    if settings.location is not None:
        loc = Path(os.path.expanduser(settings.location))
        return loc if loc.is_absolute() else project / loc
    local = workspace.local_root() if workspace is not None else None
    if local is not None:
        return Path(local) / "envs"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "misen" / "envs"


class CondaEnvironment(Environment):
    """Conda prefixes built from the project's ``pixi.lock`` with py-rattler (no pixi needed)."""

    PLUGIN_NAME = "conda"
    Settings = CondaSettings

    def prepare(
        self, *, project: Path, snapshot: Path | None, name: str | None, workspace: Any, build: bool = True
    ) -> Activation | None:
        """The activation of environment ``name`` (``None``: ``[environment] name``) of the run's ``pixi.lock``.

        ``None`` when environments are off (``name = "none"``) or there is no ``pixi.lock``; the lock is read from
        the snapshot when there is one, so queued work keeps the environment it was submitted with.
        """
        conf: CondaSettings = self.settings
        chosen = name or conf.name
        if chosen == "none":
            return None
        lock_path = next(
            (b / LOCK_FILE for b in (snapshot, project) if b is not None and (b / LOCK_FILE).is_file()), None
        )
        if lock_path is None:
            if name is not None:
                raise ConfigError(f"a task names the conda environment {name!r}, but there is no {LOCK_FILE} in {project}")
            return None
        # Imported here: every run asks, and a project without a pixi.lock (returned above) needs neither.
        from misen_env_conda._build import ensure_prefix
        from misen_env_conda._lock import read_locked_environment

        locked = read_locked_environment(lock_path, chosen, conf.platform)
        location = prefix_location(conf, project, workspace)
        prefix = location / locked.digest
        path: list[str] = [str(prefix / "bin")]
        env: dict[str, str] = {}
        if build:
            cache = Path(os.path.expanduser(conf.package_cache)) if conf.package_cache is not None else location / "pkgs"
            if not cache.is_absolute():
                cache = project / cache
            prefix, marker = ensure_prefix(locked, location, cache)
            path = list(marker.get("path") or path)
            env = dict(marker.get("env") or {})
        return Activation(
            kind="conda",
            name=chosen,
            digest=locked.digest,
            prefix=str(prefix),
            path=tuple(path),
            env={**env, "CONDA_PREFIX": str(prefix), "CONDA_DEFAULT_ENV": chosen},
            source=locked.source,
        )
