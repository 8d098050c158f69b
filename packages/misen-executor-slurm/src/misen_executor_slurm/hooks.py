"""Hook implementations of misen_executor_slurm: the ``slurm`` executor and the ``misen slurm`` commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from misen import hookimpl
from misen.plugins import Lazy

if TYPE_CHECKING:
    import click


@hookimpl
def misen_add_executors() -> list[Lazy]:
    return [Lazy("slurm", "misen_executor_slurm.executor:SlurmExecutor")]  # imported when a run uses it


@hookimpl
def misen_add_commands(cli: click.Group) -> None:
    from misen_executor_slurm._commands import slurm_group

    cli.add_command(slurm_group)
