"""The experiment subcommands that inspect a workflow: ``list``, ``tree``, ``incomplete``, ``count``, ``why``,
``accept``, ``verify`` and ``report``. Each returns its exit status: 0 only when everything asked for succeeded."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from misen import reproducibility
from misen.cli._display import Output
from misen.cli._inspect import Statuses, failure_lines, mark, render_list, render_tree
from misen.labels import graph_labels
from misen.report._cli import report_command, tree_command
from misen.verify_conditions import verify_as_recorded

if TYPE_CHECKING:
    from misen.cli._experiment_cli import State

__all__ = ["do_accept", "do_count", "do_incomplete", "do_list", "do_report", "do_tree", "do_verify", "do_why"]


def do_list(state: State, show_all: bool) -> int:
    named = state.named()
    statuses = Statuses(named.values(), state.workspace())
    render_list(Output(), named, statuses, show_all=show_all)
    return 0


def do_tree(state: State, level: int | None, names: tuple[str, ...], fmt: str = "text") -> int:
    if fmt != "text":
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


def do_why(state: State, name: str) -> int:
    members = [(f"{name}[{label}]" if label else name, exp[name]) for label, exp in state.members()]
    out = Output()
    for shown, task in members:
        if len(members) > 1:
            out.line((f"{shown}:", "bold"))
        for line in reproducibility.explain(task, state.workspace()):
            out.line(line)
    return 0


def do_accept(state: State, names: tuple[str, ...]) -> int:
    named = state.named(names)
    labels = graph_labels(named.values())
    linked = reproducibility.accept(list(named.values()), state.workspace())
    out = Output()
    for task, message in linked:
        out.line(mark("done"), f" {labels.get(task.hash, task.name)}: {message}")
    if not linked:
        out.line("nothing to accept: no task has a result of an earlier version of its code")
    return 0


def do_verify(state: State, names: tuple[str, ...], sample: int | None) -> int:
    if sample is not None and sample < 1:
        raise click.BadParameter("must be 1 or more", param_hint="'--sample'")
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


def do_report(state: State, output: str | None) -> int:
    return report_command(state, output)
