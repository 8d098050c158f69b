"""The in-process executor: every unit runs in the calling process, one after another (notebooks, tests)."""

from __future__ import annotations

import contextlib
import os

import attrs

from misen.environment import activated, activation_key
from misen.executor import Executor, ExecutorSettings, Plan, RunEvents, UnitOutcome
from misen.hookspecs import hookimpl
from misen.output import routers_installed
from misen.worker import run_unit, scoped_environment
from misen.workspace import Workspace

__all__ = ["InProcessExecutor"]


@attrs.define
class InProcessSettings(ExecutorSettings):
    """The in-process executor has nothing to configure beyond its type."""

    capture: bool = attrs.field(
        default=True,
        metadata={"help": "Copy each task's printed output to its log in the workspace (and still show it)."},
    )


class InProcessExecutor(Executor):
    """Runs units in this process, in dependency order. No parallelism, no snapshot, no time limits."""

    PLUGIN_NAME = "in-process"
    ALIASES = ("in_process", "inprocess")
    Settings = InProcessSettings
    SNAPSHOT = False

    def execute(self, plan: Plan, workspace: Workspace, events: RunEvents) -> dict[str, UnitOutcome]:
        outcomes: dict[str, UnitOutcome] = {}
        where = f"in process {os.getpid()}"
        capture = "python" if self.settings.capture else "none"
        # The output routers stay installed for the whole run rather than once per unit.
        with (
            scoped_environment(plan.env),
            routers_installed() if self.settings.capture else contextlib.nullcontext(),
        ):
            for unit in plan.units.values():
                if events.cancel_requested:
                    outcome = UnitOutcome(status="cancelled", error="the run was cancelled")
                    outcomes[unit.id] = outcome
                    events.unit_finished(unit, outcome)
                    continue
                bad = [d for d in unit.deps if d in outcomes and not outcomes[d].ok]
                if bad:
                    outcome = UnitOutcome(
                        status="skipped", error=f"dependency {plan.units[bad[0]].label} did not succeed"
                    )
                    outcomes[unit.id] = outcome
                    events.unit_finished(unit, outcome)
                    continue
                events.unit_started(unit, where)
                # The native environment (issue 19) is applied to os.environ while the unit runs: programs the
                # task starts see the prefix; libraries already loaded into this Python do not change.
                activation = plan.activations.get(activation_key(unit)) if plan.activations else None
                with activated(activation) if activation is not None else contextlib.nullcontext():
                    outcome = run_unit(
                        unit,
                        workspace,
                        plan=plan,
                        executor=self.PLUGIN_NAME,
                        where=where,
                        capture=capture,
                    )
                outcomes[unit.id] = outcome
                events.unit_finished(unit, outcome)
        return outcomes


@hookimpl
def misen_add_executors() -> list[type[Executor]]:
    return [InProcessExecutor]
