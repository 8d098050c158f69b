"""misen's hook implementations of misen-env-conda: the environment hook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from misen.hookspecs import hookimpl

from misen_env_conda.settings import CondaSettings

#: The ``[environment]`` settings, for the configuration reference (see ``misen_prepare_environment``).
SETTINGS = CondaSettings


@hookimpl
def misen_prepare_environment(
    project: Path,
    snapshot: Path | None,
    name: str | None,
    settings: dict[str, Any],
    where: str,
    workspace: Any,
    build: bool,
) -> Any:
    from misen_env_conda.environment import prepare

    return prepare(
        project=project, snapshot=snapshot, name=name, settings=settings, where=where, workspace=workspace, build=build
    )
