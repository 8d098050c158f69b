"""Plain, line-oriented run reports (the default outside a terminal, and for `Experiment.run()`)."""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any, TextIO

from misen.hookspecs import hookimpl

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
    """One line per event, no colour."""

    def __init__(self, stream: TextIO | None = None, *, verbose: bool = True) -> None:
        self.stream = stream
        self.verbose = verbose

    def _print(self, text: str) -> None:
        stream = self.stream or sys.stderr
        stream.write(text + "\n")  # one write, not print's two (a sweep prints a line per unit)
        stream.flush()

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
