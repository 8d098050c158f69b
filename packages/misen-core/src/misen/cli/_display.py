"""Terminal output: styled lines (rich only when a terminal is attached) and the live run display.

rich is imported only when output goes to a terminal (or for ``result``'s pretty printing), so ``--help`` and
piped output never pay for it.
"""

from __future__ import annotations

import sys
import threading
import time
import types
from typing import TYPE_CHECKING, Any, TextIO

from misen.reporting import MARKS, PlainReporter, Reporter

if TYPE_CHECKING:
    from misen.executor import Executor, Plan, UnitOutcome, WorkUnit
    from misen.runner import RunReport
    from misen.tasks import Task
    from misen.workspace import Workspace

__all__ = ["STATUS_MARKS", "STATUS_STYLES", "LiveReporter", "Output", "is_terminal", "reporter_for"]

#: The mark of each task status, everywhere the CLI shows one.
STATUS_MARKS = types.MappingProxyType({"done": "✓", "stale": "◐", "pending": "○", "failed": "✗", "running": "⟳"})
STATUS_STYLES = types.MappingProxyType({
    "done": "green",
    "stale": "yellow",
    "pending": "dim",
    "failed": "bold red",
    "running": "cyan",
})


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


Segment = tuple[str, str]  # (text, rich style; "" for none)


class Output:
    """Writes lines made of styled segments: with colour on a terminal, plain text otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._console: Any = None
        self.rich = is_terminal(self.stream)

    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self.stream, highlight=False, soft_wrap=True)
        return self._console

    def line(self, *segments: Segment | str) -> None:
        parts = [(s, "") if isinstance(s, str) else s for s in segments]
        if not self.rich:
            print("".join(text for text, _ in parts), file=self.stream, flush=True)
            return
        from rich.text import Text

        text = Text()
        for chunk, style in parts:
            text.append(chunk, style=style or None)
        self.console().print(text)

    def pretty(self, value: Any) -> None:
        """Pretty-print a value (rich's pretty printer; colour-free when not a terminal)."""
        import os

        if isinstance(value, str | os.PathLike | int | float | complex | bool | bytes) or value is None:
            # A scalar prints as itself, never wrapped, so a path can be copied or piped.
            text = os.fspath(value) if isinstance(value, os.PathLike) else value
            print(text if isinstance(text, str) else repr(text), file=self.stream, flush=True)
            return
        if not self.rich:
            import pprint

            print(pprint.pformat(value, width=100, sort_dicts=False), file=self.stream, flush=True)
            return
        from rich.pretty import Pretty

        self.console().print(Pretty(value, expand_all=False))


def reporter_for(stream: TextIO | None = None) -> Reporter:
    """The live display on a terminal, plain lines otherwise."""
    stream = stream or sys.stderr
    if is_terminal(stream):
        return LiveReporter(stream)
    return PlainReporter(stream)


class LiveReporter(Reporter):
    """A live progress display (counts, elapsed time, which unit runs where) that ends with the run."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console

        self.console = Console(file=stream, highlight=False)
        self.out = Output(stream)
        self._lock = threading.Lock()
        self._live: Any = None
        self._start = time.time()
        self._running: dict[str, tuple[WorkUnit, str, float]] = {}
        self._counts = {"done": 0, "cached": 0, "failed": 0, "skipped": 0}
        self._total = 0
        self._already = 0
        self._header = ""

    def stale(self, stale: list[tuple[Task[Any], list[str]]]) -> None:
        PlainReporter(self.console.file).stale(stale)  # type: ignore[arg-type]

    def start(self, plan: Plan, cached: int, total: int, executor: Executor, workspace: Workspace) -> None:
        from rich.live import Live

        self._start = time.time()
        self._total = len(plan.units)
        self._already = cached
        self._header = f"{executor.describe()} executor · {workspace.describe()}"
        if not plan.units:
            return
        self._live = Live(self, console=self.console, refresh_per_second=8, transient=True)
        self._live.start(refresh=True)

    def __rich__(self) -> Any:
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            c = dict(self._counts)
            running = list(self._running.values())
        elapsed = time.time() - self._start
        grid = Table.grid(padding=(0, 1))
        summary = Text()
        finished = c["done"] + c["cached"] + c["failed"] + c["skipped"]
        summary.append(f"{finished}/{self._total} units", style="bold")
        summary.append(f" · {len(running)} running", style="cyan")
        summary.append(f" · {c['done']} done", style="green")
        summary.append(f" · {c['cached'] + self._already} cached", style="green")
        if c["failed"]:
            summary.append(f" · {c['failed']} failed", style="bold red")
        if c["skipped"]:
            summary.append(f" · {c['skipped']} skipped", style="yellow")
        summary.append(f" · {elapsed:.1f}s", style="dim")
        grid.add_row(Spinner("dots"), summary)
        now = time.time()
        for unit, where, since in running[:10]:
            grid.add_row("", Text(f"▸ {unit.label}  {where}  {now - since:.1f}s", style="dim"))
        if len(running) > 10:
            grid.add_row("", Text(f"… and {len(running) - 10} more", style="dim"))
        grid.add_row("", Text(self._header, style="dim"))
        return grid

    def unit_started(self, unit: WorkUnit, where: str) -> None:
        with self._lock:
            self._running[unit.id] = (unit, where, time.time())

    def unit_finished(self, unit: WorkUnit, outcome: UnitOutcome) -> None:
        with self._lock:
            self._running.pop(unit.id, None)
            key = outcome.status if outcome.status in self._counts else "failed"
            self._counts[key] += 1
        if not outcome.ok and outcome.status != "skipped":
            line = f"✗ {unit.label} [{outcome.status}]"
            if outcome.error:
                line += f": {outcome.error}"
            if outcome.log:
                line += f" (log: {outcome.log})"
            from rich.text import Text

            # The style goes on the text itself: a console-level style would leak into the live display.
            self.console.print(Text(line, style="red"))

    def close(self) -> None:
        """Stop the live display (idempotent; also called when the run raised)."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def finish(self, report: RunReport) -> None:
        self.close()
        counts = report.counts()
        ran, cached = counts.get("done", 0), report.already_cached + counts.get("cached", 0)
        bad = {k: v for k, v in counts.items() if k not in ("done", "cached")}
        mark = MARKS["failed"] if bad else MARKS["done"]
        parts = [f"{ran} ran", f"{cached} cached", *(f"{v} {k}" for k, v in bad.items())]
        style = "bold red" if bad else "bold green"
        verdict = "finished with failures" if bad else "finished"
        self.out.line((f"{mark} run {verdict} in {report.duration:.1f}s: ", style), ", ".join(parts))
