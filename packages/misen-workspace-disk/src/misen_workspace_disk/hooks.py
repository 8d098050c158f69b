"""Hook implementations of misen_workspace_disk: the ``disk`` workspace and the ``workspace``/``gc`` commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from misen import hookimpl
from misen.plugins import Lazy

if TYPE_CHECKING:
    import click

__all__ = ["misen_add_commands", "misen_add_workspaces"]


@hookimpl
def misen_add_workspaces() -> list[Lazy]:
    return [Lazy("disk", "misen_workspace_disk.workspace:DiskWorkspace")]  # imported when a run uses it


@hookimpl
def misen_add_commands(cli: click.Group) -> None:
    from misen_workspace_disk._commands import add_commands

    add_commands(cli)
