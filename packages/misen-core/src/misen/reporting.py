"""Plain, line-oriented run reports (the default outside a terminal, and for `Experiment.run()`)."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import types
from typing import TYPE_CHECKING, Any, TextIO

from misen.hookspecs import hookimpl
from misen.output import add_flusher, remove_flusher

if TYPE_CHECKING:
    from misen.executor import Executor, Plan, UnitOutcome, WorkUnit
    from misen.runner import RunReport
    from misen.tasks import Task
    from misen.workspace import Workspace

__all__ = ["PlainReporter", "Reporter", "ReporterPlugin"]

MARKS = types.MappingProxyType(
    {
        "done": "✓",
        "cached": "✓",
        "failed": "✗",
        "timeout": "✗",
        "cancelled": "✗",
        "skipped": "-",
        "queued": "…",
    }
)
MAX_STALE_LINES = 20


class Reporter:
    """Receives a run's events. Subclass to display them differently (the CLI's live display does).

    A reporter passed to `misen.run` (or ``Experiment.run(reporter=...)``) is wrapped in a `ReporterPlugin` and
    registered on the lifecycle hooks for the run, like any other observer."""

    def stale(self, stale: list[tuple[Task[Any], list[str]]]) -> None: ...
    def start(
        self, plan: Plan, cached: int, total: int, executor: Executor, workspace: Workspace
    ) -> None: ...
    def unit_started(self, unit: WorkUnit, where: str) -> None: ...
    def unit_finished(self, unit: WorkUnit, outcome: UnitOutcome) -> None: ...
    def finish(self, report: RunReport) -> None: ...
    def close(self) -> None:
        """Called once more when the run is over, however it ended (after `finish`, or after an error): write
        out whatever is held back."""


class ReporterPlugin:
    """A `Reporter` as an observer of one run's lifecycle hooks (what `misen.runner.run` registers)."""

    def __init__(self, reporter: Reporter, run_id: str) -> None:
        self.reporter = reporter
        self.run_id = run_id

    @hookimpl
    def misen_run_started(
        self,
        plan: Plan,
        executor: Executor,
        workspace: Workspace,
        cached: int,
        total: int,
        stale: list[tuple[Task[Any], list[str]]],
        run_id: str,
    ) -> None:
        if run_id != self.run_id:
            return
        if stale:
            self.reporter.stale(stale)
        self.reporter.start(plan, cached, total, executor, workspace)

    @hookimpl
    def misen_unit_started(self, unit: WorkUnit, where: str, run_id: str) -> None:
        if run_id == self.run_id:
            self.reporter.unit_started(unit, where)

    @hookimpl
    def misen_unit_finished(self, unit: WorkUnit, outcome: UnitOutcome, run_id: str) -> None:
        if run_id == self.run_id:
            self.reporter.unit_finished(unit, outcome)

    @hookimpl
    def misen_run_finished(self, report: RunReport, run_id: str) -> None:
        if run_id == self.run_id:
            self.reporter.finish(report)


class PlainReporter(Reporter):
    """One line per event, no colour.

    A line comes out at once when the last one came out more than `BATCH` seconds ago; lines that follow it
    closer than that are written together at most `BATCH` seconds later (a sweep of quick units makes a few
    writes a second, not one per unit: into a pipe, each write wakes the reader). What a task prints is shown
    after the lines written before it started (`misen.output` asks for them first), and `finish` and `close`
    write whatever waits.
    """

    #: Seconds a line may wait for the next ones.
    BATCH = 0.1

    def __init__(self, stream: TextIO | None = None, *, verbose: bool = True) -> None:
        self.stream = stream
        self.verbose = verbose
        self._lock = threading.RLock()
        self._pending: list[str] = []
        self._last = 0.0
        self._timer: threading.Timer | None = None
        self._hooked = False

    def _print(self, text: str) -> None:
        with self._lock:
            self._pending.append(text + "\n")
            now = time.monotonic()
            if now - self._last >= self.BATCH:
                self._write_locked(now)
            else:
                if not self._hooked:
                    add_flusher(self.flush)  # a task's own output waits for these lines
                    self._hooked = True
                if self._timer is None:
                    self._timer = threading.Timer(self.BATCH, self._flush_later)
                    self._timer.daemon = True
                    self._timer.start()

    def _write_locked(self, now: float) -> None:
        if self._pending:
            stream = self.stream or sys.stderr
            text = "".join(self._pending)
            self._pending.clear()
            stream.write(text)
            stream.flush()
        self._last = now

    def flush(self) -> None:
        """Write the lines that wait."""
        with self._lock:
            self._timer = None
            if self._pending:
                self._write_locked(time.monotonic())

    def _flush_later(self) -> None:
        # On the timer's thread: a stream that went away meanwhile (closed, a pipe whose reader left) is the
        # writer's business at its next line or at `close`, not a traceback from a thread.
        with contextlib.suppress(OSError, ValueError):
            self.flush()

    def close(self) -> None:
        """Write what waits and stop waiting (the end of a run)."""
        with self._lock:
            timer, self._timer = self._timer, None
            hooked, self._hooked = self._hooked, False
        if timer is not None:
            timer.cancel()
        if hooked:
            remove_flusher(self.flush)
        self.flush()

    def stale(self, stale: list[tuple[Task[Any], list[str]]]) -> None:
        self._print(
            f"misen: {len(stale)} task(s) have results for an earlier version of their code and will recompute"
        )
        if len(stale) <= MAX_STALE_LINES:
            for task, reasons in stale:
                self._print(f"  ~ {task!r}: {'; '.join(reasons[:3])}{' …' if len(reasons) > 3 else ''}")

    def start(self, plan: Plan, cached: int, total: int, executor: Executor, workspace: Workspace) -> None:
        if self.verbose:
            n = len(plan.units)
            self._print(
                f"misen: {n} work unit(s) to run with the {executor.describe()} executor; "
                f"{cached} of {total} task(s) up to date (workspace: {workspace.describe()})"
            )

    def unit_finished(self, unit: WorkUnit, outcome: UnitOutcome) -> None:
        if not self.verbose and outcome.ok:
            return
        mark = MARKS.get(outcome.status, "?")
        line = f"{mark} {unit.label} [{outcome.status}, {outcome.duration:.1f}s]"
        if outcome.error:
            line += f": {outcome.error}"
        if outcome.log and not outcome.ok:
            line += f" (log: {outcome.log})"
        self._print(line)

    def finish(self, report: RunReport) -> None:
        counts = report.counts()
        bad = sum(v for k, v in counts.items() if k not in ("done", "cached", "queued"))
        parts = [f"{counts.get('done', 0)} ran", f"{report.already_cached + counts.get('cached', 0)} cached"]
        for status in ("queued", "failed", "timeout", "skipped", "cancelled"):
            if counts.get(status):
                parts.append(f"{counts[status]} {status}")
        verdict = "finished" if bad == 0 else "finished with failures"
        self._print(f"misen: run {verdict} in {report.duration:.1f}s: {', '.join(parts)}")
        self.close()
