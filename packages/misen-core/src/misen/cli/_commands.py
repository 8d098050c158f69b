"""The experiment subcommands: their names, help and options, and where each one's implementation lives.

The table is light to import (click only), so an experiment's ``--help`` lists every command without importing
what the commands use; a command's module is imported when it runs (`CommandSpec.load`). Each implementation
takes the command line's `misen.cli._experiment_cli.State` and the command's own options, and returns its exit
status: 0 only when everything asked for succeeded.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import attrs
import click

from misen.cli._display import STATUS_MARKS

__all__ = ["COMMANDS", "CommandSpec", "command_spec"]


@attrs.frozen
class CommandSpec:
    """One subcommand: ``target`` is ``"module:function"`` of its implementation."""

    name: str
    target: str
    help: str
    params: Callable[[], list[click.Parameter]] = list

    def load(self) -> Callable[..., int]:
        """The implementation (its module imported on first use)."""
        module, _, attr = self.target.partition(":")
        fn: Callable[..., int] = getattr(importlib.import_module(module), attr)
        return fn


def _names_arg() -> click.Argument:
    return click.Argument(["names"], nargs=-1, metavar="[NAMES]...")


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "run",
        "misen.cli._run:do_run",
        "Compute every named task (or NAMES) that is not cached yet (the default).",
        lambda: [
            _names_arg(),
            click.Option(
                ["--detach"],
                is_flag=True,
                help="Queue the work and return at once (executors with a scheduler, such as slurm).",
            ),
            click.Option(
                ["--wait"],
                is_flag=True,
                help="Wait for tasks that other runs are computing, instead of failing on them (a run always "
                "waits for runs that started after it).",
            ),
            click.Option(
                ["-n", "--dry-run", "dry_run"], is_flag=True, help="Show what would run and why; run nothing."
            ),
            click.Option(
                ["--force", "force"],
                multiple=True,
                metavar="NAME",
                help="Recompute this named task (or every task of this function) and what depends on it; the "
                "current results are set aside, not deleted (repeatable).",
            ),
            click.Option(
                ["--retries", "retries"],
                type=int,
                default=None,
                help="Retry a failing task this many times (overrides @meta(retries=...)); recorded in provenance.",
            ),
            click.Option(
                ["-v", "--verbose", "verbose"], is_flag=True, help="Stream each task's output, prefixed by its label."
            ),
        ],
    ),
    CommandSpec(
        "list",
        "misen.cli._queries:do_list",
        f"The named tasks and their status ({STATUS_MARKS['done']} done, {STATUS_MARKS['stale']} stale, "
        f"{STATUS_MARKS['pending']} pending, {STATUS_MARKS['failed']} failed).",
        lambda: [
            click.Option(
                ["--all", "show_all"], is_flag=True, help="Also list every other task of the workflow."
            )
        ],
    ),
    CommandSpec(
        "tree",
        "misen.cli._queries:do_tree",
        "The workflow as a tree of tasks with their status.",
        lambda: [
            click.Option(
                ["-L", "--level", "level"], type=int, default=None, help="Show at most this many levels."
            ),
            click.Option(
                ["--format", "fmt"], type=click.Choice(["text", "dot", "json"]), default="text",
                help="text (the tree), dot (Graphviz) or json (the whole graph, for your own drawings).",
            ),
            _names_arg(),
        ],
    ),
    CommandSpec("incomplete", "misen.cli._queries:do_incomplete", "Only the tasks still to compute (stale, pending or failed)."),
    CommandSpec("count", "misen.cli._queries:do_count", 'How much is done: "Completed 7 of 12 tasks".'),
    CommandSpec(
        "logs",
        "misen.cli._results:do_logs",
        "The newest log of task NAME (a named task, or every task of a function), or of every task of the workflow "
        "(listed when there are many; paged on a terminal).",
        lambda: [
            click.Argument(["name"], required=False),
            click.Option(
                ["--job", "job"],
                is_flag=True,
                help="What the job (the worker, the SLURM job) printed, followed by the task's own output.",
            ),
            click.Option(
                ["--path", "path_only"],
                is_flag=True,
                help="Print only the log files' paths (a quick task that succeeded keeps its log in its record, "
                "not in a file).",
            ),
            click.Option(["--list", "list_only"], is_flag=True, help="List the logs (task, time, path)."),
        ],
    ),
    CommandSpec(
        "result",
        "misen.cli._results:do_result",
        "Print the cached result of task NAME (of every sweep member; --table for one row each).",
        lambda: [
            click.Argument(["name"]),
            click.Option(
                ["--provenance", "provenance"], is_flag=True, help="Show how and where the result was made."
            ),
            click.Option(
                ["--table", "table"],
                is_flag=True,
                help="One row per sweep member: its parameters and the scalar fields of its result.",
            ),
            click.Option(["--csv", "csv_out"], is_flag=True, help="The table as CSV."),
            click.Option(["--json", "json_out"], is_flag=True, help="The table as JSON (a list of rows)."),
        ],
    ),
    CommandSpec(
        "why",
        "misen.cli._queries:do_why",
        "What enters task NAME's identity, and what changed if it is stale.",
        lambda: [click.Argument(["name"])],
    ),
    CommandSpec(
        "accept",
        "misen.cli._queries:do_accept",
        "Declare that the current code produces the stale results of NAMES (all if none); runs nothing.",
        lambda: [_names_arg()],
    ),
    CommandSpec(
        "verify",
        "misen.cli._queries:do_verify",
        "Recompute cached results into a scratch location and compare them with the stored ones.",
        lambda: [
            _names_arg(),
            click.Option(
                ["--sample", "sample"], type=int, default=None, help="Verify only N randomly chosen tasks."
            ),
        ],
    ),
    CommandSpec(
        "report",
        "misen.cli._queries:do_report",
        "Write one self-contained HTML file: the graph, every task's state, logs, timelines and results.",
        lambda: [click.Option(["-o", "--output", "output"], metavar="FILE", help="Where to write it.")],
    ),
)


def command_spec(name: str) -> CommandSpec:
    """The subcommand called ``name``."""
    for spec in COMMANDS:
        if spec.name == name:
            return spec
    raise KeyError(name)
