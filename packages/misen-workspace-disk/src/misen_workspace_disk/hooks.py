"""Hook implementations of misen_workspace_disk: the ``disk`` workspace and the ``workspace``/``gc`` commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from misen import hookimpl

if TYPE_CHECKING:
    import click

__all__ = ["misen_add_commands", "misen_add_workspaces"]


@hookimpl
def misen_add_workspaces() -> list[type[Any]]:
    from misen_workspace_disk.workspace import DiskWorkspace

    return [DiskWorkspace]


@hookimpl
def misen_add_commands(cli: click.Group) -> None:
    from misen_workspace_disk._commands import add_commands

    add_commands(cli)
