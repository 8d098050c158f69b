"""``run``: the run display with task labels, ``--dry-run``, ``--force``, ``--retries``, ``-v`` (live task output)
and the short named results printed after a successful run."""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import attrs

from misen import cache
from misen.cli._display import Output, reporter_for
from misen.cli._plan import dependents, dry_run_lines, forced_tasks
from misen.cli._plan import force as set_aside
from misen.errors import MisenError
from misen.labels import graph_labels
from misen.reporting import Reporter
from misen.results_table import scalar_fields
from misen.runner import resolve_executor, resolve_workspace, run
from misen.tasklog import task_logs

if TYPE_CHECKING:
    from misen.cli._experiment_cli import State
    from misen.executor import Executor, Plan, UnitOutcome, WorkUnit
    from misen.runner import RunReport
    from misen.tasks import Task
    from misen.workspace import Workspace

__all__ = ["do_run"]

#: A named result is printed after a run when it is a scalar, or its text is at most this long.
SHORT_RESULT = 120
#: At most this many named results are printed after a run; the rest are counted (``result NAME`` shows one).
MAX_SHORT_RESULTS = 20


class LabelledReporter(Reporter):
    """Passes a run's events on with each unit labelled among its siblings, and follows task output (``-v``)."""

    def __init__(self, inner: Reporter, roots: list[Task[Any]], *, follow: bool = False) -> None:
        self.inner = inner
        self.roots = roots
        self.follow = follow
        self._follower: LogFollower | None = None

    @functools.cached_property
    def labels(self) -> dict[str, str]:
        """Every task's label (the planned units carry theirs already; this is for the stale list)."""
        return graph_labels(self.roots)

    def stale(self, stale: list[tuple[Task[Any], list[str]]]) -> None:
        stream = getattr(self.inner, "stream", None) or getattr(getattr(self.inner, "console", None), "file", None)
        out = stream or sys.stderr
        print(f"misen: {len(stale)} task(s) will recompute:", file=out, flush=True)
        stale_ids = {t._id_bytes for t, _ in stale}
        for task, reasons in stale[:20]:
            upstream = [d for d in task.dependencies if d._id_bytes in stale_ids]
            if reasons == ["code changed"] and upstream:
                # Its own code is unchanged (no function differs): what changed is upstream.
                reasons = [f"upstream task changed: {self.labels.get(upstream[0].hash, upstream[0].name)}"]
            shown = "; ".join(reasons[:3]) + (" …" if len(reasons) > 3 else "")
            print(f"  ~ {self.labels.get(task.hash, task.name)}: {shown}", file=out, flush=True)
        if len(stale) > 20:
            print(f"  … and {len(stale) - 20} more", file=out, flush=True)

    def start(self, plan: Plan, cached: int, total: int, executor: Executor, workspace: Workspace) -> None:
        self.inner.start(plan, cached, total, executor, workspace)
        if self.follow and plan.units:
            self._follower = LogFollower(workspace, self._print_output)
            self._follower.start()

    def _print_output(self, label: str, line: str) -> None:
        flush = getattr(self.inner, "flush", None)
        if flush is not None:
            flush()  # the progress lines written before this output come out first
        console = getattr(self.inner, "console", None)
        if console is not None:
            from rich.text import Text

            text = Text(f"{label} │ ", style="dim")
            text.append(line)
            console.print(text)
        else:
            stream = getattr(self.inner, "stream", None) or sys.stderr
            print(f"{label} │ {line}", file=stream, flush=True)

    def unit_started(self, unit: WorkUnit, where: str) -> None:
        if self._follower is not None:
            self._follower.add(unit)
        self.inner.unit_started(unit, where)

    def unit_finished(self, unit: WorkUnit, outcome: UnitOutcome) -> None:
        if self._follower is not None:
            self._follower.remove(unit)
        self.inner.unit_finished(unit, outcome)

    def finish(self, report: RunReport) -> None:
        self.close()
        self.inner.finish(report)

    def close(self) -> None:
        if self._follower is not None:
            self._follower.stop()
            self._follower = None
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


class LogFollower(threading.Thread):
    """Prints the new lines of each running unit's task log, prefixed by its label (``run -v``)."""

    def __init__(self, workspace: Workspace, emit: Any, interval: float = 0.2) -> None:
        super().__init__(name="misen-log-follower", daemon=True)
        self.workspace = workspace
        self.emit = emit
        self.interval = interval
        self.since = time.time() - 1.0
        self._lock = threading.Lock()
        self._units: dict[str, tuple[str, dict[str, Any]]] = {}
        self._halt = threading.Event()

    def add(self, unit: WorkUnit) -> None:
        with self._lock:
            self._units[unit.id] = (unit.label, {"task": unit.root, "path": None, "offset": 0, "rest": ""})

    def remove(self, unit: WorkUnit) -> None:
        with self._lock:
            entry = self._units.pop(unit.id, None)
        if entry is not None:
            self._drain(unit.id, *entry, final=True)

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=5)
        with self._lock:
            left, self._units = dict(self._units), {}
        for key, (label, state) in left.items():
            self._drain(key, label, state, final=True)

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            with self._lock:
                units = list(self._units.items())
            for key, (label, state) in units:
                self._drain(key, label, state, final=False)

    def _drain(self, key: str, label: str, state: dict[str, Any], *, final: bool) -> None:
        try:
            if state["path"] is None:
                # A running task's log is a file once it matters; a quick task's is in its record when it ended.
                entries = [e for e in task_logs(self.workspace, state["task"]) if e.mtime >= self.since]
                if not entries or (entries[0].path is None and not final):
                    return
                if entries[0].path is None:
                    chunk = entries[0].read()[state["offset"] :]
                    state["offset"] += len(chunk)
                else:
                    state["path"] = entries[0].path
            if state["path"] is not None:
                with open(state["path"], encoding="utf-8", errors="replace") as f:
                    f.seek(state["offset"])
                    chunk = f.read()
                    state["offset"] = f.tell()
        except (OSError, MisenError):
            return
        text = state["rest"] + chunk
        lines = text.split("\n")
        state["rest"] = "" if final else lines.pop()
        for line in lines:
            if line.startswith("[misen] ") or (final and not line):
                continue
            self.emit(label, line.rstrip("\r"))


def do_run(
    state: State,
    names: tuple[str, ...],
    detach: bool = False,
    dry_run: bool = False,
    force: tuple[str, ...] = (),
    retries: int | None = None,
    verbose: bool = False,
    wait: bool = False,
) -> int:
    named = state.named(names)  # an unknown name fails before anything runs
    roots = list(dict.fromkeys(named.values()))
    workspace: Any = resolve_workspace(state.common.get("workspace_type"))
    forced: list[Task[Any]] = []
    if force:
        forced = forced_tasks(force, named, roots)
    if dry_run:
        return _dry_run(roots, workspace, graph_labels(roots), forced)
    if retries is not None:
        if retries < 0:
            raise MisenError(f"--retries must be 0 or more, got {retries}")
        os.environ["MISEN_RETRIES"] = str(retries)  # read by the workers (inherited by their processes)
    executor: Any = state.executor
    if detach:
        executor = resolve_executor(executor)
        if not executor.CAN_DETACH:
            raise MisenError(
                f"the {executor.PLUGIN_NAME} executor cannot detach: only executors that hand work to a scheduler "
                "(such as slurm) can leave it running"
            )
        executor.settings = attrs.evolve(executor.settings, detach=True)
    if forced:
        moved = set_aside(dependents(forced, roots), workspace)
        print(
            f"misen: forcing {len(forced)} task(s) and what depends on them: {moved} current result(s) set aside "
            "(kept in the workspace)",
            file=sys.stderr,
            flush=True,
        )
    reporter = LabelledReporter(reporter_for(sys.stderr), roots, follow=verbose)
    try:
        report = run(roots, executor, workspace, reporter=reporter, wait=wait)
    finally:
        reporter.close()
    if report.ok and not detach:
        _print_short_results(named, workspace)
    return 0 if report.ok else 1


def _dry_run(roots: list[Task[Any]], workspace: Workspace, labels: dict[str, str], forced: list[Task[Any]]) -> int:
    lines, would, total = dry_run_lines(roots, workspace, labels, forced)
    out = Output()
    width = min(max((len(label) for label, _ in lines), default=0), 48)
    for label, reasons in lines:
        out.line(("○ ", "dim"), (label.ljust(width), "bold"), "  ", reasons)
    if lines:
        out.line(f"dry run: {would} of {total} task(s) would run; nothing was run")
    else:
        out.line(f"dry run: all {total} task(s) are up to date; nothing would run")
    return 0


def _print_short_results(named: dict[str, Task[Any]], workspace: Workspace) -> None:
    """After a successful run: each named result that is a scalar or prints short, one per line, for at most
    `MAX_SHORT_RESULTS` named tasks (a sweep of a thousand is counted, not printed, and not loaded)."""
    cacheable = [(name, task) for name, task in named.items() if task.cacheable]
    shown: list[tuple[str, str]] = []
    for name, task in cacheable[:MAX_SHORT_RESULTS]:
        try:
            value = cache.load(workspace, task)
        except Exception:
            continue
        text = _short_text(value)
        if text is not None:
            shown.append((name, text))
    out = Output()
    if shown:
        width = max(len(n) for n, _ in shown)
        for name, text in shown:
            out.line((name.ljust(width), "bold"), "  ", text)
    if len(cacheable) > MAX_SHORT_RESULTS:
        out.line(
            (f"… {len(cacheable) - MAX_SHORT_RESULTS} more named results: `result NAME` prints one", "dim")
        )


def _short_text(value: Any) -> str | None:
    if isinstance(value, bool | int | float | str | os.PathLike) or value is None:
        text = os.fspath(value) if isinstance(value, os.PathLike) else repr(value) if not isinstance(value, str) else value
    elif isinstance(value, dict | list | tuple):
        text = repr(value)
        if len(text) > SHORT_RESULT and isinstance(value, dict):
            fields = scalar_fields(value)
            text = ", ".join(f"{k}={v!r}" for k, v in fields.items()) if fields else text
    else:
        return None
    return text if len(text) <= SHORT_RESULT and "\n" not in text else None
