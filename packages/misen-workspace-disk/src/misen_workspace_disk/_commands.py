"""The ``misen workspace info|gc`` commands and the top-level ``misen gc`` alias."""

from __future__ import annotations

import json
from typing import Any

import click
from misen.errors import MisenError

__all__ = ["add_commands", "check_command", "gc_command", "info_command", "workspace_group"]

_DIRECTORY = click.option(
    "--directory",
    "-d",
    type=click.Path(file_okay=False),
    default=None,
    help="The workspace directory (default: the configured disk workspace, .misen in the project root).",
)


def open_workspace(directory: str | None) -> Any:
    """The disk workspace at ``directory``, or the one ``.misen.toml`` configures."""
    from misen_workspace_disk.workspace import DiskWorkspace, DiskWorkspaceSettings

    if directory is not None:
        return DiskWorkspace(DiskWorkspaceSettings(directory=directory))
    try:
        from misen.session import load_settings
        from misen.settings import structure_settings
    except ImportError:
        return DiskWorkspace(DiskWorkspaceSettings())
    section = dict(load_settings().workspace)
    kind = section.pop("type", "disk")
    if kind != "disk":
        raise MisenError(
            f"`misen workspace` commands act on disk workspaces; the configured workspace is {kind!r} "
            "(pass --directory to name a disk workspace)"
        )
    return DiskWorkspace(structure_settings(DiskWorkspaceSettings, section, where="[workspace]"))


def _fail(exc: MisenError) -> None:
    raise click.ClickException(str(exc))


@click.command("info")
@_DIRECTORY
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def info_command(directory: str | None, as_json: bool) -> None:
    """Show the workspace's size and what it holds: results, records by kind, logs, locks, snapshots."""
    from misen_workspace_disk._maintenance import human_size, workspace_info

    try:
        info = workspace_info(open_workspace(directory))
    except MisenError as exc:
        _fail(exc)
        return
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True))
        return
    click.echo(f"workspace  {info['directory']}" + ("" if info["exists"] else "  (not created yet)"))
    click.echo(f"size       {human_size(info['size'])}")
    areas = info["areas"]
    kept = info.get("inline_results", 0)
    inline = f"; {kept} more kept in their task records" if kept else ""
    click.echo(f"results    {info['results']} ({human_size(areas['results']['bytes'])}{inline})")
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(info["records"].items())) or "none"
    click.echo(f"records    {kinds}")
    click.echo(f"logs       {info['logs']} files ({human_size(areas['logs']['bytes'])})")
    click.echo(f"locks      {info['locks']['held']} held, {info['locks']['files']} lock files")
    click.echo(f"snapshots  {info['snapshots']} ({human_size(areas['snapshots']['bytes'])})")
    click.echo(f"work dirs  {human_size(areas['work']['bytes'])}; tmp {human_size(areas['tmp']['bytes'])}")


@click.command("gc")
@_DIRECTORY
@click.option(
    "--dry-run", "-n", is_flag=True, help="Only show what would be removed and how much it would free."
)
@click.option(
    "--experiment",
    "-e",
    "experiments",
    multiple=True,
    metavar="MODULE:NAME",
    help="Keep only results these experiments (classes, instances or tasks; repeatable) refer to.",
)
@click.option(
    "--min-age",
    type=float,
    default=3600.0,
    show_default=True,
    help="Keep results stored in the last this many seconds (a running task may be about to record them).",
)
def gc_command(directory: str | None, dry_run: bool, experiments: tuple[str, ...], min_age: float) -> None:
    """Remove results nothing refers to, and leftovers of crashed processes.

    Without --experiment, a result is removed when no task record (of the current or an earlier version of the
    code) refers to it. With --experiment, only results of the tasks of those experiments are kept (their current
    results and the newest result of each task under an earlier code version). Results of running tasks,
    results stored in the last --min-age seconds, held locks and temporary files of live processes are never
    removed. Records that would point at a removed result are removed with it.
    """
    from misen_workspace_disk._maintenance import (
        apply_gc,
        human_size,
        load_object,
        plan_gc,
        reachable_results,
    )

    try:
        ws = open_workspace(directory)
        keep = None
        if experiments:
            keep = reachable_results(ws, [load_object(spec) for spec in experiments])
        plan = plan_gc(ws, keep=keep, min_age=min_age)
        for result, size, names in plan.results:
            label = ", ".join(names) if names else "no task record"
            click.echo(f"result {result}  {human_size(size):>10}  {label}")
        for path, size in plan.tmp:
            click.echo(f"leftover {path}  {human_size(size)}")
        verb = "would free" if dry_run else "freeing"
        click.echo(
            f"{len(plan.results)} results, {len(plan.records)} records, {len(plan.locks)} idle lock files, "
            f"{len(plan.tmp)} leftovers: {verb} {human_size(plan.bytes)}"
            + (
                f" ({plan.kept_in_use} unreferenced results kept: in use or newer than --min-age)"
                if plan.kept_in_use
                else ""
            )
        )
        if dry_run:
            return
        freed = apply_gc(ws, plan)
        click.echo(f"freed {human_size(freed)}")
    except MisenError as exc:
        _fail(exc)


@click.command("check")
@_DIRECTORY
@click.option(
    "--repair", is_flag=True, help="Drop damaged results and the records pointing at them (the next run recomputes)."
)
def check_command(directory: str | None, repair: bool) -> None:
    """Read every stored file, checksum it against its manifest and report what is damaged (like git fsck).

    Also reports records that point at results which are not stored. Exits with status 1 when damage remains.
    With --repair, damaged results (except those of tasks running now) and every record pointing at them or at
    a missing result are removed, so `list` shows those tasks as not done and the next run recomputes them.
    """
    from misen.check import check_workspace

    from misen_workspace_disk._maintenance import human_size

    try:
        ws = open_workspace(directory)
        report = check_workspace(ws, repair=repair)
    except MisenError as exc:
        _fail(exc)
        return
    for damage in report.damaged:
        suffix = " — dropped" if damage.repaired else (" — in use, left alone" if repair else "")
        click.echo(f"damaged  {damage.describe()}{suffix}")
    for kind, key, result in report.dangling[:20]:
        click.echo(f"dangling {kind} record {key} -> result {result} (not stored)" + (" — removed" if repair else ""))
    if len(report.dangling) > 20:
        click.echo(f"dangling ... and {len(report.dangling) - 20} more records")
    click.echo(
        f"checked {report.results} results ({human_size(report.bytes)}): {len(report.damaged)} damaged, "
        f"{len(report.dangling)} records pointing at missing results"
        + ("" if report.ok or repair else "; run `misen workspace check --repair` to drop them")
    )
    left = [d for d in report.damaged if not d.repaired]
    if (left and repair) or (not report.ok and not repair):
        raise SystemExit(1)


@click.group("workspace")
def workspace_group() -> None:
    """Inspect and clean the disk workspace (.misen/)."""


workspace_group.add_command(info_command)
workspace_group.add_command(gc_command)
workspace_group.add_command(check_command)


def add_commands(cli: click.Group) -> None:
    """Attach ``workspace info|gc`` (joining an existing ``workspace`` group) and ``gc`` to ``cli``."""
    existing = cli.commands.get("workspace")
    if isinstance(existing, click.Group):
        for cmd in (info_command, gc_command, check_command):
            if cmd.name not in existing.commands:
                existing.add_command(cmd)
    elif existing is None:
        cli.add_command(workspace_group)
    if "gc" not in cli.commands:
        cli.add_command(gc_command, "gc")
