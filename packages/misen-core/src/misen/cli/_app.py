"""The ``misen`` command: ``experiment``, ``fill``, ``plugins``, ``config``, and the commands plugins add.

Plugin commands are collected (through the ``misen_add_commands`` hook) only when a command name is not one of
the built-ins or the list of commands is needed (``misen --help``); a plugin whose hook raises is reported on
standard error and skipped. ``experiment`` (which imports the whole engine) is loaded when it runs
(`MisenGroup.LAZY`), so ``misen --help`` stays quick.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from typing import Any

import click

from misen._fill import duplicate_ids, fill_paths, project_files
from misen.cli._errors import error_line, invoke
from misen.errors import MisenError
from misen.project_root import explain
from misen.session import current_session, make_session, project_root, registry
from misen.settings import unstructure_settings

__all__ = ["MisenGroup", "cli", "main"]

CONTEXT = types.MappingProxyType({"help_option_names": ("-h", "--help"), "max_content_width": 110})


class MisenGroup(click.Group):
    """The top-level group; plugin commands are added on first need, and ``LAZY`` commands when they run."""

    #: Built-in commands whose module is imported only when they run: name -> ("module:attribute", short help).
    LAZY = types.MappingProxyType({
        "experiment": ("misen.cli._target:experiment_command", "Run an experiment's command line (module:Class)."),
    })

    _plugins_loaded = False

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        try:
            hook = registry().pm.hook.misen_add_commands
        except MisenError as exc:
            error_line(f"plugins could not be loaded: {exc}")
            return
        for impl in hook.get_hookimpls():
            kwargs = {"cli": self} if "cli" in impl.argnames else {}
            try:
                impl.function(**kwargs)
            except Exception as exc:
                print(
                    f"misen: plugin {impl.plugin_name!r} failed to add its commands "
                    f"({type(exc).__name__}: {exc}); they are skipped",
                    file=sys.stderr,
                )

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugins()
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        lazy = self.LAZY.get(cmd_name)
        if lazy is not None and cmd_name not in self.commands:
            module, _, attr = lazy[0].partition(":")
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        found = super().get_command(ctx, cmd_name)
        if found is None and not self._plugins_loaded:
            self._load_plugins()
            found = super().get_command(ctx, cmd_name)
        return found

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their short help; a ``LAZY`` command's comes from the table, unloaded."""
        rows: list[tuple[str, str]] = []
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max((len(n) for n in names), default=0)
        for name in names:
            if name in self.LAZY and name not in self.commands:
                rows.append((name, self.LAZY[name][1]))
                continue
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=MisenGroup, context_settings=CONTEXT)
@click.version_option(package_name="misen-core", prog_name="misen", message="%(prog)s %(version)s")
def cli() -> None:
    """misen: research experiments as cached, reproducible task graphs.

    \b
    misen experiment my_project.experiments.training:TrainingExperiment run --lr 0.1
    misen experiment my_project.configs.training list
    misen fill
    """


@cli.command("fill", short_help="Give @meta task functions fresh ids.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--renew", multiple=True, metavar="NAME", help="Give this task function a fresh id (repeatable)."
)
@click.option("--dry-run", is_flag=True, help="Show what would change without writing.")
def fill_command(paths: tuple[Path, ...], renew: tuple[str, ...], dry_run: bool) -> int:
    """Give every @meta task function without an id a fresh, unique one (default: the project's package files)."""
    targets = list(paths) or project_files(project_root())
    if not targets:
        raise MisenError(
            f"no project files found under {project_root()}; name the files or directories to fill"
        )
    changes = fill_paths(targets, renew=set(renew), dry_run=dry_run)
    verb = "would set" if dry_run else ("renewed" if renew else "set")
    cwd = Path.cwd()
    for change in changes:
        try:
            shown = change.path.relative_to(cwd)
        except ValueError:
            shown = change.path
        click.echo(f"{shown}:{change.line}: {change.function}: {verb} id={change.new_id!r}")
    if not changes:
        click.echo("every task function already has an id")
    duplicates = duplicate_ids(targets)
    if duplicates:
        ident, places = next(iter(duplicates.items()))
        shown = " and ".join(f"{_shown_path(p, cwd)}:{line} ({fn})" for p, line, fn in places)
        more = f" ({len(duplicates) - 1} more duplicated id(s))" if len(duplicates) > 1 else ""
        raise MisenError(
            f"id {ident!r} is used by {len(places)} task functions: {shown}{more}; give all but one a fresh id "
            f"(misen fill --renew {places[-1][2]} {_shown_path(places[-1][0], cwd)})"
        )
    return 0


def _shown_path(path: Path, cwd: Path) -> str:
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


@cli.command("plugins", short_help="List installed backends, serializers and hashers.")
def plugins_command() -> int:
    """The installed executors, workspaces, serializers and hashers, with their packages and versions."""
    rows = [(i.kind, i.name, i.distribution, i.version, i.module) for i in registry().infos()]
    headers = ("KIND", "NAME", "PACKAGE", "VERSION", "MODULE")
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return 0


@cli.command("config", short_help="Show the effective configuration and its files.")
@click.option(
    "--config", "config_path", metavar="PATH", help="Show this configuration file's effect instead."
)
def config_command(config_path: str | None) -> int:
    """The effective configuration, and the file each value came from."""
    session = make_session(config=config_path) if config_path else current_session()
    settings = session.settings
    click.echo(explain(session.cwd))
    click.echo("files (lowest precedence first): " + (", ".join(settings.files) or "none"))
    for kind in ("executor", "workspace"):
        cls, values, note = session.backend(kind)
        click.echo(f"[{kind}]")
        click.echo(f"  type = {_toml_value(cls.PLUGIN_NAME)}    # {settings.source(kind, 'type')}")
        for key, value in unstructure_settings(values).items():
            click.echo(f"  {key} = {_toml_value(value)}    # {settings.source(kind, key)}")
        if note:
            click.echo(f"  # note: {note}")
    click.echo("[cache]")
    for key, value in unstructure_settings(settings.cache).items():
        click.echo(f"  {key} = {_toml_value(value)}    # {settings.source('cache', key)}")
    click.echo("[environment]")  # issue 19: read by the environment plugin
    if not settings.environment:
        click.echo("  (defaults: the pixi.lock environment named default, when a pixi.lock is present)")
    for key, value in settings.environment.items():
        click.echo(f"  {key} = {_toml_value(value)}    # {settings.source('environment', key)}")
    return 0


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


def main(args: list[str] | None = None) -> None:
    """Run ``misen`` and exit with its status."""
    sys.exit(invoke(cli, args, prog_name="misen"))
