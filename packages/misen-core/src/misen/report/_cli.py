"""The ``report`` subcommand and ``tree --format dot|json``, called from the experiment command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from misen.report._formats import tree_dot, tree_json
from misen.report._html import write_report

if TYPE_CHECKING:
    from misen.cli._experiment_cli import State

__all__ = ["default_path", "report_command", "tree_command"]


def default_path(experiment: Any) -> Path:
    """``misen-report-<ExperimentClass>.html`` in the current directory."""
    return Path.cwd() / f"misen-report-{type(experiment).__name__}.html"


def report_command(state: State, output: str | None) -> int:
    """Write the report, print its path; exit 0 whatever state the tasks are in."""
    exp = state.experiment
    path = Path(output) if output else default_path(exp)
    written = write_report(exp.named_tasks(), state.workspace(), path, title=repr(exp))
    print(written.resolve())
    return 0


def tree_command(state: State, fmt: str, names: tuple[str, ...]) -> int:
    """Print the task graph as Graphviz DOT or JSON."""
    named = state.named(names)
    print(tree_dot(named, state.workspace()) if fmt == "dot" else tree_json(named, state.workspace()), end="")
    return 0
