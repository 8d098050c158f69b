"""``misen slurm ...``: commands for runs queued on SLURM (``cancel``, ``runs``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from misen_executor_slurm._cli import CliBackend
from misen_executor_slurm._runs import RunRecord, find_run, list_runs

__all__ = ["slurm_group"]


def _bases() -> list[Path]:
    from misen.runner import resolve_executor, resolve_workspace

    from misen_executor_slurm.executor import SlurmExecutor

    ex = resolve_executor("slurm")
    assert isinstance(ex, SlurmExecutor)
    return [ex.base_dir(resolve_workspace(None))]


def cancel_run(record: RunRecord) -> list[str]:
    """``scancel`` every job of ``record`` (finished ones are ignored by SLURM); mark the run finished."""
    env = dict(os.environ)
    if record.slurm_conf and "SLURM_CONF" not in env:
        env["SLURM_CONF"] = record.slurm_conf
    jobs = sorted(set(record.jobs))
    if jobs:
        CliBackend(env).cancel(jobs)
    record.finished = True
    record.save()
    return jobs


@click.group("slurm")
def slurm_group() -> None:
    """Runs queued on SLURM by the slurm executor."""


@slurm_group.command("cancel")
@click.argument("run_id", required=False)
def cancel_command(run_id: str | None) -> None:
    """Cancel (scancel) every job a run queued; RUN_ID defaults to the latest run still open."""
    from misen.errors import MisenError

    try:
        record = find_run(_bases(), run_id)
    except MisenError as exc:
        raise click.ClickException(str(exc)) from None
    if record is None:
        what = f"no slurm run matches {run_id!r}" if run_id else "no open slurm run to cancel"
        raise click.ClickException(f"{what} (see `misen slurm runs`)")
    jobs = cancel_run(record)
    click.echo(f"cancelled run {record.run_id}: {len(jobs)} job(s) ({', '.join(jobs) or 'none'})")


@slurm_group.command("runs")
def runs_command() -> None:
    """List the runs the slurm executor queued, newest last."""
    from misen.errors import MisenError

    try:
        runs = [r for base in _bases() for r in list_runs(base)]
    except MisenError as exc:
        raise click.ClickException(str(exc)) from None
    if not runs:
        click.echo("no slurm runs recorded")
    for r in runs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.submitted))
        state = "open" if r.is_open() else "finished"
        click.echo(f"{r.run_id}  {when}  {state:9}  {len(r.units)} unit(s) in {len(r.jobs)} job(s)")
