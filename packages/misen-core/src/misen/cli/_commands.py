"""The experiment subcommands. Each returns its exit status: 0 only when everything asked for succeeded."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import click

from misen import cache
from misen.cli._display import STATUS_MARKS, Output, reporter_for
from misen.cli._inspect import Statuses, failure_lines, mark, render_list, render_tree
from misen.errors import MisenError, NotCachedError

if TYPE_CHECKING:
    from misen.cli._experiment_cli import State
    from misen.tasks import Task

__all__ = ["COMMANDS", "do_run"]


@attrs.frozen
class CommandSpec:
    name: str
    fn: Callable[..., int]
    help: str
    params: Callable[[], list[click.Parameter]] = list


def _names_arg() -> click.Argument:
    return click.Argument(["names"], nargs=-1, metavar="[NAMES]...")


def do_run(state: State, names: tuple[str, ...], detach: bool = False, wait: bool = False) -> int:
    exp = state.experiment
    for n in names:
        exp[n]  # an unknown name fails before anything runs
    executor: Any = state.executor
    if detach:
        from misen.runner import resolve_executor

        executor = resolve_executor(executor)
        if not executor.CAN_DETACH:
            raise MisenError(
                f"the {executor.PLUGIN_NAME} executor cannot detach: only executors that hand work to a scheduler "
                "(such as slurm) can leave it running"
            )
        executor.settings = attrs.evolve(executor.settings, detach=True)
    reporter = reporter_for(sys.stderr)
    try:
        report = exp.run(
            executor=executor,
            workspace=state.common.get("workspace_type"),
            names=list(names) or None,
            reporter=reporter,
            wait=wait,
        )
    finally:
        close = getattr(reporter, "close", None)
        if close is not None:
            close()
    return 0 if report.ok else 1


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
        out.line(mark(statuses.of(task)), " ", (label, "bold"), repr(task))
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
        by[statuses.of(t)] = by.get(statuses.of(t), 0) + 1
    out = Output()
    out.line(f"Completed {by.get('done', 0)} of {len(tasks)} tasks")
    extra = [f"{by[s]} {s}" for s in ("failed", "stale", "pending") if by.get(s)]
    if extra:
        out.line((f"({', '.join(extra)})", "dim"))
    return 0


def do_logs(state: State, name: str | None, job: bool, path_only: bool) -> int:
    ws = state.workspace()
    named = state.named()
    from misen.tasks import iter_graph

    tasks: list[Task[Any]] = [state.experiment[name]] if name else list(iter_graph(named.values()))
    kind = "unit" if job else "task"
    out = Output()
    found = 0
    for task in tasks:
        entries = ws.list_logs(kind, task.hash)
        if not entries:
            continue
        found += 1
        newest = entries[0]
        if path_only:
            out.line(str(newest.path))
            continue
        out.line((f"==> {task!r} ({newest.path}) <==", "bold"))
        text = newest.read()
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    if not found:
        what = "work-unit" if job else "task"
        target = repr(state.experiment[name]) if name else "this experiment"
        raise MisenError(f"no {what} logs for {target} in the {ws.describe()} workspace yet")
    return 0


def do_result(state: State, name: str, provenance: bool) -> int:
    task = state.experiment[name]
    ws = state.workspace()
    out = Output()
    if provenance:
        prov = cache.provenance(ws, task) if task.cacheable else None
        if prov is None:
            raise NotCachedError(
                f"{name} ({task!r}) has no stored result with provenance in the {ws.describe()} workspace"
            )
        width = max(len(k) for k in prov)
        for key, value in prov.items():
            out.line((key.ljust(width), "bold"), "  ", _show_provenance(key, value))
        return 0
    out.pretty(task.result(ws, compute=False))
    return 0


def _show_provenance(key: str, value: Any) -> str:
    import time

    if key in ("start", "time", "end") and isinstance(value, (int, float)):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value)) + f" ({value:.3f})"
    if key == "duration" and isinstance(value, (int, float)):
        return f"{value:.3f}s"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _reproducibility() -> Any:
    try:
        from misen import reproducibility
    except ImportError:
        raise MisenError(
            "this misen has no reproducibility support (misen.reproducibility is missing)"
        ) from None
    return reproducibility


def do_why(state: State, name: str) -> int:
    task = state.experiment[name]
    out = Output()
    for line in _reproducibility().explain(task, state.workspace()):
        out.line(line)
    return 0


def do_accept(state: State, names: tuple[str, ...]) -> int:
    named = state.named(names)
    linked = _reproducibility().accept(list(named.values()), state.workspace())
    out = Output()
    for task, message in linked:
        out.line(mark("done"), f" {task!r}: {message}")
    if not linked:
        out.line("nothing to accept: no task has a result of an earlier version of its code")
    return 0


def do_verify(state: State, names: tuple[str, ...], sample: int | None) -> int:
    if sample is not None and sample < 1:
        raise click.BadParameter("must be 1 or more", param_hint="'--sample'")
    named = state.named(names)
    results = _reproducibility().verify(list(named.values()), state.workspace(), sample=sample)
    out = Output()
    counts: dict[str, int] = {}
    for res in results:
        counts[res.status] = counts.get(res.status, 0) + 1
        if res.status == "same":
            out.line(mark("done"), f" {res.task!r}: reproduced (result {str(res.stored)[:12]})")
        elif res.status == "different":
            out.line(
                mark("failed"),
                f" {res.task!r}: NOT reproduced: stored {str(res.stored)[:12]}, recomputed {str(res.recomputed)[:12]}"
                " (non-deterministic)",
            )
        elif res.status == "error":
            out.line(mark("failed"), f" {res.task!r}: recomputing failed: {res.error}")
        else:
            out.line(mark("pending"), f" {res.task!r}: {res.status}, nothing to verify")
    nondet = [r.task.name for r in results if r.status == "different"]
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
        "The newest log of task NAME, or of every task of the workflow that has one.",
        lambda: [
            click.Argument(["name"], required=False),
            click.Option(["--job", "job"], is_flag=True, help="Work-unit (job) logs instead of task logs."),
            click.Option(["--path", "path_only"], is_flag=True, help="Print only the log files' paths."),
        ],
    ),
    CommandSpec(
        "result",
        do_result,
        "Print the cached result of task NAME.",
        lambda: [
            click.Argument(["name"]),
            click.Option(
                ["--provenance", "provenance"], is_flag=True, help="Show how and where the result was made."
            ),
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
