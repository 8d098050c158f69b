"""The experiment subcommands. Each returns its exit status: 0 only when everything asked for succeeded."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import click

from misen.cli._display import STATUS_MARKS, Output
from misen.cli._inspect import Statuses, failure_lines, mark, render_list, render_tree
from misen.cli._results import do_logs, do_result
from misen.cli._run import do_run
from misen.errors import MisenError

if TYPE_CHECKING:
    from misen.cli._experiment_cli import State

__all__ = ["COMMANDS", "do_run"]


@attrs.frozen
class CommandSpec:
    name: str
    fn: Callable[..., int]
    help: str
    params: Callable[[], list[click.Parameter]] = list


def _names_arg() -> click.Argument:
    return click.Argument(["names"], nargs=-1, metavar="[NAMES]...")


def do_list(state: State, show_all: bool) -> int:
    named = state.named()
    statuses = Statuses(named.values(), state.workspace())
    render_list(Output(), named, statuses, show_all=show_all)
    return 0


def do_tree(state: State, level: int | None, names: tuple[str, ...], fmt: str = "text") -> int:
    if fmt != "text":
        from misen.report._cli import tree_command

        return tree_command(state, fmt, names)
    if level is not None and level < 1:
        raise click.BadParameter("must be 1 or more", param_hint="'-L'")
    named = state.named(names)
    render_tree(Output(), named, Statuses(named.values(), state.workspace()), level)
    return 0


def do_incomplete(state: State) -> int:
    named = state.named()
    statuses = Statuses(named.values(), state.workspace())
    out = Output()
    tasks = statuses.counted()
    todo = [t for t in tasks if statuses.of(t) != "done"]
    names = {t._id_bytes: n for n, t in named.items()}
    for task in todo:
        label = f"{names[task._id_bytes]}: " if task._id_bytes in names else ""
        out.line(mark(statuses.of(task)), " ", (label, "bold"), statuses.label(task))
        if statuses.of(task) == "failed":
            failure_lines(out, statuses, task, "    ")
    if not todo:
        out.line(mark("done"), f" all {len(tasks)} tasks are complete")
    return 0


def do_count(state: State) -> int:
    named = state.named()
    statuses = Statuses(named.values(), state.workspace())
    tasks = statuses.counted()
    by: dict[str, int] = {}
    for t in tasks:
        status = statuses.of(t)
        if status == "failed" and statuses.blocked(t):
            status = "skipped"  # it never ran: a dependency failed
        by[status] = by.get(status, 0) + 1
    out = Output()
    out.line(f"Completed {by.get('done', 0)} of {len(tasks)} tasks")
    words = {"skipped": "skipped (a dependency failed)"}
    extra = [f"{by[s]} {words.get(s, s)}" for s in ("failed", "skipped", "stale", "pending") if by.get(s)]
    if extra:
        out.line((f"({', '.join(extra)})", "dim"))
    return 0


def _reproducibility() -> Any:
    try:
        from misen import reproducibility
    except ImportError:
        raise MisenError(
            "this misen has no reproducibility support (misen.reproducibility is missing)"
        ) from None
    return reproducibility


def do_why(state: State, name: str) -> int:
    members = [(f"{name}[{label}]" if label else name, exp[name]) for label, exp in state.members()]
    out = Output()
    for shown, task in members:
        if len(members) > 1:
            out.line((f"{shown}:", "bold"))
        for line in _reproducibility().explain(task, state.workspace()):
            out.line(line)
    return 0


def do_accept(state: State, names: tuple[str, ...]) -> int:
    from misen.labels import graph_labels

    named = state.named(names)
    labels = graph_labels(named.values())
    linked = _reproducibility().accept(list(named.values()), state.workspace())
    out = Output()
    for task, message in linked:
        out.line(mark("done"), f" {labels.get(task.hash, task.name)}: {message}")
    if not linked:
        out.line("nothing to accept: no task has a result of an earlier version of its code")
    return 0


def do_verify(state: State, names: tuple[str, ...], sample: int | None) -> int:
    if sample is not None and sample < 1:
        raise click.BadParameter("must be 1 or more", param_hint="'--sample'")
    from misen.labels import graph_labels
    from misen.verify_conditions import verify_as_recorded

    named = state.named(names)
    results = verify_as_recorded(list(named.values()), state.workspace(), sample=sample)
    labels = graph_labels(named.values())
    out = Output()
    counts: dict[str, int] = {}
    for res, note in results:
        counts[res.status] = counts.get(res.status, 0) + 1
        label = labels.get(res.task.hash, res.task.name)
        if res.status == "same":
            out.line(mark("done"), f" {label}: reproduced (result {str(res.stored)[:12]})")
        elif res.status == "different":
            out.line(
                mark("failed"),
                f" {label}: NOT reproduced: stored {str(res.stored)[:12]}, recomputed {str(res.recomputed)[:12]}"
                " under the recorded conditions",
            )
            out.line("    ", (note, "dim"))
        elif res.status == "error":
            out.line(mark("failed"), f" {label}: recomputing failed: {res.error}")
        else:
            out.line(mark("pending"), f" {label}: {res.status}, nothing to verify")
    nondet = [res.task.name for res, _ in results if res.status == "different"]
    summary = f"Verified {counts.get('same', 0) + counts.get('different', 0)} task(s): {counts.get('same', 0)} reproduced"
    summary += f", {counts.get('different', 0)} differ"
    if counts.get("error"):
        summary += f", {counts['error']} failed to recompute"
    if nondet:
        summary += f"; non-deterministic: {', '.join(dict.fromkeys(nondet))}"
    out.line(summary)
    return 0 if not counts.get("different") and not counts.get("error") else 1


COMMANDS = (
    CommandSpec(
        "run",
        do_run,
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
        do_list,
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
        do_tree,
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
    CommandSpec("incomplete", do_incomplete, "Only the tasks still to compute (stale, pending or failed)."),
    CommandSpec("count", do_count, 'How much is done: "Completed 7 of 12 tasks".'),
    CommandSpec(
        "logs",
        do_logs,
        "The newest log of task NAME (a named task, or every task of a function), or of every task of the workflow "
        "(listed when there are many; paged on a terminal).",
        lambda: [
            click.Argument(["name"], required=False),
            click.Option(
                ["--job", "job"],
                is_flag=True,
                help="What the job (the worker, the SLURM job) printed, followed by the task's own output.",
            ),
            click.Option(["--path", "path_only"], is_flag=True, help="Print only the log files' paths."),
            click.Option(["--list", "list_only"], is_flag=True, help="List the logs (task, time, path)."),
        ],
    ),
    CommandSpec(
        "result",
        do_result,
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
        do_why,
        "What enters task NAME's identity, and what changed if it is stale.",
        lambda: [click.Argument(["name"])],
    ),
    CommandSpec(
        "accept",
        do_accept,
        "Declare that the current code produces the stale results of NAMES (all if none); runs nothing.",
        lambda: [_names_arg()],
    ),
    CommandSpec(
        "verify",
        do_verify,
        "Recompute cached results into a scratch location and compare them with the stored ones.",
        lambda: [
            _names_arg(),
            click.Option(
                ["--sample", "sample"], type=int, default=None, help="Verify only N randomly chosen tasks."
            ),
        ],
    ),
)


def do_report(state: State, output: str | None) -> int:
    from misen.report._cli import report_command

    return report_command(state, output)


COMMANDS = (
    *COMMANDS,
    CommandSpec(
        "report",
        do_report,
        "Write one self-contained HTML file: the graph, every task's state, logs, timelines and results.",
        lambda: [click.Option(["-o", "--output", "output"], metavar="FILE", help="Where to write it.")],
    ),
)
