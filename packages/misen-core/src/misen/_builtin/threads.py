"""The threads executor: units run on a pool of threads of the calling process (I/O-bound tasks: downloads,
API calls, waiting on other programs).

Nothing process-wide is taken over: each unit's prints go to its own log through `misen.worker.thread_output`,
the project's environment is applied once around the whole run, and the run's workspace instance is used
directly (so the ``memory`` workspace works). CPU-bound Python code does not run faster on threads: use the
``local`` executor for that.
"""

from __future__ import annotations

import os
import threading

import attrs

from misen.executor import Executor, ExecutorSettings, Plan, RunEvents, UnitOutcome, WorkUnit
from misen.hookspecs import hookimpl
from misen.output import routers_installed
from misen.worker import run_unit, scoped_environment
from misen.workspace import Workspace

__all__ = ["ThreadsExecutor", "ThreadsSettings"]


def _positive(inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value!r}")


@attrs.define
class ThreadsSettings(ExecutorSettings):
    """Settings of the threads executor."""

    max_workers: int = attrs.field(
        default=8,
        validator=_positive,
        metadata={"help": "How many units run at once, each on its own thread."},
    )


class ThreadsExecutor(Executor):
    """Runs units on up to ``max_workers`` threads of this process, each as soon as its dependencies are done."""

    PLUGIN_NAME = "threads"
    ALIASES = ("thread",)
    Settings = ThreadsSettings
    SNAPSHOT = False

    def execute(self, plan: Plan, workspace: Workspace, events: RunEvents) -> dict[str, UnitOutcome]:
        import concurrent.futures as cf  # here: a run on threads is rare, and every start would pay for it

        outcomes: dict[str, UnitOutcome] = {}
        dependents = plan.dependents()
        waiting = {uid: set(unit.deps) for uid, unit in plan.units.items()}
        lock = threading.Lock()

        def run_one(unit: WorkUnit) -> UnitOutcome:
            where = f"thread {threading.current_thread().name} (pid {os.getpid()})"
            events.unit_started(unit, where)
            return run_unit(
                unit, workspace, plan=plan, executor=self.PLUGIN_NAME, where=where, capture="thread"
            )

        def finish(unit: WorkUnit, outcome: UnitOutcome) -> list[WorkUnit]:
            """Record the outcome; return the units that became ready (skipping those that cannot run)."""
            ready: list[WorkUnit] = []
            stack = [(unit, outcome)]
            while stack:
                u, o = stack.pop()
                with lock:
                    if u.id in outcomes:
                        continue
                    outcomes[u.id] = o
                events.unit_finished(u, o)
                for child_id in dependents.get(u.id, ()):
                    child = plan.units[child_id]
                    if not o.ok:
                        skip = UnitOutcome(status="skipped", error=f"dependency {u.label} did not succeed")
                        stack.append((child, skip))
                        continue
                    with lock:
                        pending = waiting[child_id]
                        pending.discard(u.id)
                        if not pending and child_id not in outcomes:
                            ready.append(child)
            return ready

        with (
            scoped_environment(plan.env),
            routers_installed(),
            cf.ThreadPoolExecutor(
                max_workers=self.settings.max_workers, thread_name_prefix="misen-unit"
            ) as pool,
        ):
            running: dict[cf.Future[UnitOutcome], WorkUnit] = {}
            for unit in plan.units.values():
                if not waiting[unit.id]:
                    running[pool.submit(run_one, unit)] = unit
            try:
                while running:
                    done, _ = cf.wait(running, timeout=0.2, return_when=cf.FIRST_COMPLETED)
                    for fut in done:
                        unit = running.pop(fut)
                        try:
                            outcome = fut.result()
                        except BaseException as exc:  # run_unit reports task errors itself; this is misen's
                            outcome = UnitOutcome(status="failed", error=f"{type(exc).__name__}: {exc}")
                        for ready in finish(unit, outcome):
                            if events.cancel_requested:
                                continue
                            running[pool.submit(run_one, ready)] = ready
                    if events.cancel_requested:
                        for fut in [f for f in running if f.cancel()]:
                            unit = running.pop(fut)
                            finish(unit, UnitOutcome(status="cancelled", error="the run was cancelled"))
            except KeyboardInterrupt:
                # Threads cannot be stopped from outside: cancel what has not started, let started units end.
                for fut in list(running):
                    if fut.cancel():
                        running.pop(fut)
                cf.wait(running)
                for fut, unit in running.items():
                    if not fut.cancelled() and fut.exception() is None:
                        finish(unit, fut.result())
                raise
        for unit in plan.units.values():
            if unit.id not in outcomes:
                finish(unit, UnitOutcome(status="cancelled", error="the run was cancelled"))
        return outcomes


@hookimpl
def misen_add_executors() -> list[type[Executor]]:
    return [ThreadsExecutor]
