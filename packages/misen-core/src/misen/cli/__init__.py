"""misen's command lines: the ``misen`` command (`main`) and every experiment's own (`Experiment.cli`).

Importing this package costs nothing; click is imported when a command line is built, rich only when output
goes to a terminal.
"""

from __future__ import annotations

from typing import Any

__all__ = ["experiment_cli", "main"]


def main(args: list[str] | None = None) -> None:
    """The ``misen`` console script."""
    from misen.cli._app import main as app_main

    app_main(args)


def experiment_cli(target: Any, args: list[str] | None = None) -> int:
    """Run the command line of an `misen.Experiment` class or instance on ``args``; return the exit status."""
    from misen.cli._experiment_cli import main_for
    from misen.experiment import Experiment

    if isinstance(target, Experiment):
        return main_for(type(target), target, args, standalone=False)
    return main_for(target, None, args, standalone=False)
