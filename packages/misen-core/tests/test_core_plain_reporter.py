"""The plain reporter holds lines back for at most `PlainReporter.BATCH` seconds (a sweep of quick units makes a
few writes, not one per unit), never loses them, and never shows them after output that came later."""

from __future__ import annotations

import contextlib
import io
import time

from misen import Task, meta, run
from misen._builtin.memory import MemoryWorkspace
from misen.reporting import PlainReporter


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, s: str) -> int:
        self.writes += 1
        return super().write(s)


@meta(id="PLAINREP1", cache=True)
def quiet(i: int) -> int:
    return i


@meta(id="PLAINREP2", cache=True)
def chatty(i: int) -> int:
    print(f"task output {i}")
    return i


def test_a_sweep_of_quick_units_writes_its_lines_in_a_few_writes_and_loses_none() -> None:
    stream = CountingStream()
    run(
        [Task(quiet, i=i) for i in range(60)],
        executor="in-process",
        workspace=MemoryWorkspace(),
        reporter=PlainReporter(stream),
    )
    lines = stream.getvalue().splitlines()
    assert sum(1 for line in lines if line.startswith("✓ quiet")) == 60
    assert lines[-1].startswith("misen: run finished")
    assert stream.writes < 30  # 62 lines


def test_a_line_waits_at_most_the_batch_time() -> None:
    stream = io.StringIO()
    reporter = PlainReporter(stream)
    reporter._print("first")
    reporter._print("second")  # within BATCH of the first: held back
    assert stream.getvalue() == "first\n"
    deadline = time.monotonic() + 10  # a generous bound for a loaded machine; BATCH is what it waits
    while stream.getvalue() != "first\nsecond\n" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.getvalue() == "first\nsecond\n"  # written by the timer, nobody asked
    reporter.close()


def test_a_tasks_output_comes_after_the_lines_written_before_it() -> None:
    shared = io.StringIO()
    with contextlib.redirect_stdout(shared), contextlib.redirect_stderr(shared):
        run([Task(chatty, i=i) for i in range(5)], executor="in-process", workspace=MemoryWorkspace())
    lines = [line for line in shared.getvalue().splitlines() if "chatty" in line or "task output" in line]
    # each task's output, then its line: "task output 0", "✓ chatty[i=0]", "task output 1", ...
    for i in range(5):
        assert lines.index(f"task output {i}") < next(
            n for n, line in enumerate(lines) if f"chatty[i={i}]" in line
        )
        if i:
            assert next(n for n, line in enumerate(lines) if f"chatty[i={i - 1}]" in line) < lines.index(
                f"task output {i}"
            )


def test_lines_held_back_come_out_when_the_run_fails() -> None:
    stream = io.StringIO()

    class Boom(MemoryWorkspace):
        def sync(self) -> None:
            raise RuntimeError("the end of the run failed")

    try:
        run(
            [Task(quiet, i=i) for i in range(5)],
            executor="in-process",
            workspace=Boom(),
            reporter=PlainReporter(stream),
        )
    except RuntimeError:
        pass
    assert sum(1 for line in stream.getvalue().splitlines() if line.startswith("✓ quiet")) == 5


def test_another_observer_of_the_unit_events_still_gets_them() -> None:
    # The run's reporter alone is called directly; with another plugin observing, every observer is called.
    from misen import hookimpl
    from misen.testing.fixtures import start_session

    seen: list[str] = []

    class Observer:
        @hookimpl
        def misen_unit_started(self, unit, workspace, where, run_id) -> None:  # type: ignore[no-untyped-def]
            seen.append(f"started {unit.label}")

        @hookimpl
        def misen_unit_finished(self, unit, workspace, outcome, run_id) -> None:  # type: ignore[no-untyped-def]
            seen.append(f"finished {unit.label} {outcome.status}")

    session = start_session(Observer())
    try:
        stream = io.StringIO()
        run(
            [Task(quiet, i=i) for i in range(3)],
            executor="in-process",
            workspace=MemoryWorkspace(),
            reporter=PlainReporter(stream),
            session=session,
        )
    finally:
        start_session()
    assert sorted(seen) == sorted(
        [f"started quiet[i={i}]" for i in range(3)] + [f"finished quiet[i={i}] done" for i in range(3)]
    )
    assert sum(1 for line in stream.getvalue().splitlines() if line.startswith("✓ quiet")) == 3
