"""``result`` (one value, provenance, or a sweep's results as a table, CSV or JSON) and ``logs``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from misen import cache
from misen.cli._display import Output, is_terminal
from misen.cli._inspect import Statuses
from misen.errors import MisenError, NotCachedError
from misen.experiment import UnknownTaskError
from misen.labels import graph_labels
from misen.results_table import columns, results_rows
from misen.runner import resolve_workspace
from misen.tasklog import task_logs
from misen.tasks import iter_graph

if TYPE_CHECKING:
    from misen.cli._experiment_cli import State
    from misen.tasks import Task
    from misen.workspace import Workspace

__all__ = ["do_logs", "do_result"]

#: Without a NAME, ``logs`` prints every log when there are at most this many, and lists them otherwise.
MAX_DUMPED_LOGS = 3


def _members_named(state: State, name: str) -> list[tuple[str, Task[Any]]]:
    return [(f"{name}[{label}]" if label else name, exp[name]) for label, exp in state.members()]


def _why_missing(task: Task[Any], shown: str, workspace: Workspace) -> str | None:
    statuses = Statuses([task], workspace)
    found = statuses.failure_of(task) if statuses.of(task) == "failed" else None
    if found is not None:
        culprit, rec = found
        error = str(rec.get("error") or rec.get("status") or "failed").strip().splitlines()
        error_text = error[-1] if error else "failed"
        if culprit != task:
            return (
                f"{shown} was not computed: it was skipped because {statuses.label(culprit)} failed ({error_text}); "
                "fix that and run again"
            )
        return f"{shown} has no result: its last attempt failed ({error_text}); see `logs`"
    if statuses.of(task) == "stale":
        return f"{shown} has only a result of an earlier version of its code; run it (or `accept` it) first"
    return None  # the core's own message says it (not cached yet, or a damaged result that was dropped)


def do_result(
    state: State, name: str, provenance: bool, table: bool, csv_out: bool, json_out: bool
) -> int:
    if sum((table, csv_out, json_out, provenance)) > 1:
        raise click.UsageError("choose one of --table, --csv, --json and --provenance")
    ws = resolve_workspace(state.common.get("workspace_type"))
    if table or csv_out or json_out:
        return _table(state, name, ws, "csv" if csv_out else "json" if json_out else "table")
    members = _members_named(state, name)
    out = Output()
    for shown, task in members:
        if len(members) > 1:
            out.line((f"{shown}:", "bold"))
        if provenance:
            prov = cache.provenance(ws, task) if task.cacheable else None
            if prov is None:
                raise NotCachedError(f"{shown} has no stored result with provenance in the {ws.describe()} workspace")
            text = prov.pop("log_text", None)
            if isinstance(text, str) and prov.get("log") is None:  # a quick task's log, kept in the record
                prov["log"] = f"in the task record ({text.count(chr(10))} lines): `logs {name}` prints it"
            width = max(len(k) for k in prov)
            for key, value in prov.items():
                out.line((key.ljust(width), "bold"), "  ", _show_provenance(key, value))
            continue
        try:
            value = task.result(ws, compute=False)
        except NotCachedError as exc:
            reason = _why_missing(task, shown, ws)
            if reason is None:
                raise
            raise NotCachedError(reason) from exc
        out.pretty(value)
    return 0


def _table(state: State, name: str, ws: Workspace, fmt: str) -> int:
    rows = results_rows(state.member_values(name), name, ws)
    cols = columns(rows)
    if fmt == "json":
        import json

        click.echo(json.dumps(rows, indent=2, default=str))
        return 0
    if fmt == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=cols, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in cols})
        return 0
    cells = [[_cell(row.get(c)) if c in row else "" for c in cols] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(cols)]
    out = Output()
    out.line((" ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip(), "bold"))
    for row in cells:
        out.line(" ".join(v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None:
        return "-"
    return str(value)


def _show_provenance(key: str, value: Any) -> str:
    import time

    if key in ("start", "time", "end") and isinstance(value, (int, float)):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value)) + f" ({value:.3f})"
    if key == "duration" and isinstance(value, (int, float)):
        return f"{value:.3f}s"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def do_logs(state: State, name: str | None, job: bool, path_only: bool, list_only: bool) -> int:
    ws = resolve_workspace(state.common.get("workspace_type"))
    named = state.named()
    labels = graph_labels(named.values())
    if name:
        try:
            tasks = [t for _, t in _members_named(state, name)]
        except UnknownTaskError:
            # Not a named task: every task of the function called NAME (``logs train_svm`` in a sweep).
            tasks = [t for t in iter_graph(named.values()) if getattr(t.fn, "__name__", t.name) == name]
            if not tasks:
                raise
    else:
        tasks = list(iter_graph(named.values()))
    found = [
        (task, entries[0])
        for task in tasks
        if (entries := ws.list_logs("unit", task.hash) if job else task_logs(ws, task))
    ]
    if not found:
        what = "work-unit" if job else "task"
        target = name if name else "this experiment"
        raise MisenError(f"no {what} logs for {target} in the {ws.describe()} workspace yet")
    if path_only:
        files = [entry for _, entry in found if entry.path is not None]
        for entry in files:
            click.echo(str(entry.path))
        if len(files) < len(found):
            inline = len(found) - len(files)
            click.echo(
                f"{inline} of these logs {'is' if inline == 1 else 'are'} kept in the task record (a quick task that "
                "succeeded writes no log file): `logs NAME` prints it",
                err=True,
            )
        return 0
    if list_only or (not name and len(found) > MAX_DUMPED_LOGS):
        _list_logs(found, labels, listed=list_only)
        return 0
    chunks = []
    for task, entry in found:
        chunks.append(f"==> {labels.get(task.hash, task.name)} ({entry.where}) <==\n")
        chunks.append(_ended(entry.read()))
        if job:
            chunks.extend(_task_output(task, ws))
    _page("".join(chunks))
    return 0


def _task_output(task: Task[Any], ws: Workspace) -> list[str]:
    """The unit's task log after its job log: what the task printed (``logs --job``)."""
    entries = task_logs(ws, task)
    if not entries:
        return ["(the task printed nothing: no task log)\n"]
    return [f"--- output of the task ({entries[0].where}) ---\n", _ended(entries[0].read())]


def _list_logs(found: list[tuple[Task[Any], Any]], labels: dict[str, str], *, listed: bool) -> None:
    import time

    out = Output()
    width = max(len(labels.get(t.hash, t.name)) for t, _ in found)
    for task, entry in found:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.mtime))
        out.line((labels.get(task.hash, task.name).ljust(width), "bold"), "  ", (when, "dim"), "  ", entry.where)
    if not listed:
        out.line((f"{len(found)} logs: `logs NAME` prints one, `logs --path` lists only their paths", "dim"))


def _ended(text: str) -> str:
    return text if text.endswith("\n") or not text else text + "\n"


def _page(text: str) -> None:
    """Print ``text``, through the pager when standard output is a terminal and it is longer than the screen."""
    import shutil

    if is_terminal(sys.stdout) and text.count("\n") > shutil.get_terminal_size().lines - 2:
        click.echo_via_pager(text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
