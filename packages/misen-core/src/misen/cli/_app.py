"""The ``misen`` command: ``experiment``, ``fill``, ``plugins``, ``config``, and the commands plugins add.

Plugin commands are collected (through the ``misen_add_commands`` hook) only when a command name is not one of
the built-ins or the list of commands is needed (``misen --help``); a plugin whose hook raises is reported on
standard error and skipped.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from typing import Any

import click

from misen.cli._errors import error_line, invoke
from misen.errors import MisenError

__all__ = ["cli", "load_target", "main"]

CONTEXT = types.MappingProxyType({"help_option_names": ("-h", "--help"), "max_content_width": 110})


class MisenGroup(click.Group):
    """The top-level group; plugin commands are added on first need."""

    _plugins_loaded = False

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        try:
            from misen.plugins import registry

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
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and not self._plugins_loaded:
            self._load_plugins()
            found = super().get_command(ctx, cmd_name)
        return found


@click.group(cls=MisenGroup, context_settings=CONTEXT)
@click.version_option(package_name="misen-core", prog_name="misen", message="%(prog)s %(version)s")
def cli() -> None:
    """misen: research experiments as cached, reproducible task graphs.

    \b
    misen experiment my_project.experiments.training:TrainingExperiment run --lr 0.1
    misen experiment my_project.configs.training list
    misen fill
    """


def _add_project_to_path() -> None:
    # `python -m pkg.mod` finds the project from the current directory; the console script should too.
    from misen.settings import project_root

    root = project_root()
    for candidate in (Path.cwd(), root, root / "src"):
        text = str(candidate)
        if candidate.is_dir() and text not in sys.path:
            sys.path.append(text)


def load_target(spec: str) -> tuple[type[Any], Any]:
    """``(class, instance or None)`` for ``module:Class``, ``module:__config__`` or ``module`` (its ``__config__``)."""
    from misen.experiment import Experiment

    module_name, _, attr = spec.partition(":")
    if not module_name or not all(part.isidentifier() for part in module_name.split(".")):
        raise MisenError(
            f"{spec!r} is not a target: write module:Class (my_project.experiments.training:TrainingExperiment)"
        )
    _add_project_to_path()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise MisenError(
                f"cannot import {module_name!r}: no module named {missing!r} "
                "(install the project, or run misen from its root directory)"
            ) from None
        raise
    if attr:
        obj: Any = module
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise MisenError(f"module {module_name!r} has no attribute {attr!r}")
            obj = getattr(obj, part)
    elif hasattr(module, "__config__"):
        obj = module.__config__
    else:
        found = [
            v
            for v in vars(module).values()
            if isinstance(v, type) and issubclass(v, Experiment) and v.__module__ == module.__name__
        ]
        if len(found) != 1:
            names = ", ".join(f"{module_name}:{c.__qualname__}" for c in found) or "none"
            raise MisenError(
                f"module {module_name!r} has no __config__; name the experiment as module:Class "
                f"(experiments defined there: {names})"
            )
        obj = found[0]
    if isinstance(obj, Experiment):
        return type(obj), obj
    if isinstance(obj, type) and issubclass(obj, Experiment):
        return obj, None
    raise MisenError(f"{spec} is a {type(obj).__name__}, not an Experiment class or instance")


@cli.command(
    "experiment",
    short_help="Run an experiment's command line (module:Class).",
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "allow_interspersed_args": False,
    },
    add_help_option=False,
)
@click.argument("target", required=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def experiment_command(ctx: click.Context, target: str | None, args: tuple[str, ...]) -> int:
    """Run an experiment's command line: TARGET is module:Class, module:__config__ or module.

    \b
    misen experiment my_project.experiments.training:TrainingExperiment run --lr 0.1
    misen experiment my_project.configs.training list
    misen experiment my_project.experiments.training:TrainingExperiment --help
    """
    if target is None or target in ("-h", "--help"):
        click.echo(ctx.get_help())
        return 0
    if target.startswith("-"):
        raise click.UsageError(f"TARGET (module:Class) must come before options, got {target!r}", ctx)
    from misen.cli._experiment_cli import build_cli, pinned_project_root

    cls, instance = load_target(target)
    with pinned_project_root(cls):
        group = build_cli(cls, instance)
        return invoke(group, list(args), prog_name=f"{ctx.command_path} {target}")


@cli.command("fill", short_help="Give @meta task functions fresh ids.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--renew", multiple=True, metavar="NAME", help="Give this task function a fresh id (repeatable)."
)
@click.option("--dry-run", is_flag=True, help="Show what would change without writing.")
def fill_command(paths: tuple[Path, ...], renew: tuple[str, ...], dry_run: bool) -> int:
    """Give every @meta task function without an id a fresh, unique one (default: the project's package files)."""
    from misen._fill import fill_paths, project_files
    from misen.settings import project_root

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
    from misen._fill import duplicate_ids

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
    from misen.plugins import registry

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
    from misen.project_root import explain
    from misen.runner import backend_settings
    from misen.session import current_session, make_session
    from misen.settings import unstructure_settings

    session = make_session(config=config_path) if config_path else current_session()
    settings = session.settings
    click.echo(explain(session.cwd))
    click.echo("files (lowest precedence first): " + (", ".join(settings.files) or "none"))
    for kind in ("executor", "workspace"):
        cls, values, note = backend_settings(kind, None, session)
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
