"""``misen experiment TARGET ...``: find an experiment by name and run its command line (loaded when it runs)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from misen.cli._errors import invoke
from misen.cli._experiment_cli import build_cli, pinned_project_root
from misen.errors import MisenError
from misen.experiment import Experiment
from misen.session import project_root

__all__ = ["experiment_command", "load_target"]


def _add_project_to_path() -> None:
    # `python -m pkg.mod` finds the project from the current directory; the console script should too.
    root = project_root()
    for candidate in (Path.cwd(), root, root / "src"):
        text = str(candidate)
        if candidate.is_dir() and text not in sys.path:
            sys.path.append(text)


def load_target(spec: str) -> tuple[type[Any], Any]:
    """``(class, instance or None)`` for ``module:Class``, ``module:__config__`` or ``module`` (its ``__config__``)."""
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


@click.command(
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
    cls, instance = load_target(target)
    with pinned_project_root(cls):
        group = build_cli(cls, instance)
        return invoke(group, list(args), prog_name=f"{ctx.command_path} {target}")


