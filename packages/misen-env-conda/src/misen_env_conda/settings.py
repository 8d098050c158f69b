"""The ``[environment]`` section of ``.misen.toml``, as misen-env-conda reads it."""

from __future__ import annotations

from pathlib import Path

import attrs

__all__ = ["CondaSettings"]


@attrs.define
class CondaSettings:
    """The ``[environment]`` section when ``type = "conda"`` (the default when misen-env-conda is installed)."""

    name: str = attrs.field(
        default="default",
        metadata={
            "help": 'The pixi environment of pixi.lock that tasks run in ("default"), or "none" to run without one. '
            "A task may name another one with @meta(environment=...)."
        },
    )
    location: Path | None = attrs.field(
        default=None,
        metadata={
            "help": "The directory conda prefixes are built in, one per digest of a locked environment and "
            'platform (default: "envs" inside the workspace, else ~/.cache/misen/envs). For SLURM: a path every '
            "node sees. Relative paths start at the project root."
        },
    )
    package_cache: Path | None = attrs.field(
        default=None,
        metadata={
            "help": "The conda package cache prefixes are linked from (default: pkgs inside location). Point it at a "
            "shared, pre-filled cache so compute nodes link packages instead of downloading them."
        },
    )
    platform: str | None = attrs.field(
        default=None,
        metadata={"help": 'The locked platform to install ("linux-64"); default: the platform of this machine.'},
    )
