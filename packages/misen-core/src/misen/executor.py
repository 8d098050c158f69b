"""The `Executor` interface and the plan it executes: work units, their dependencies and outcomes.

misen turns the task graph into a `Plan` of `WorkUnit`s before calling an executor. A unit is one cacheable
task together with the non-cacheable tasks only it needs (run inline, in the same process), or one
non-cacheable task that a run asked for by name. Units already cached are not in the plan. An executor decides
where and when each unit runs, and runs it with `misen.worker` (in its own process, or in a worker process it
started); it must not start a unit before the units in its ``deps`` are done, and must skip the dependents of a
unit that did not end ``done``/``cached``.
"""

from __future__ import annotations

import pickle
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from misen.environment import activation_key
from misen.resources import Resources
from misen.settings import structure_settings

if TYPE_CHECKING:
    from misen.environment import Activation
    from misen.tasks import Task
    from misen.workspace import Workspace

__all__ = [
    "OK_STATUSES",
    "Executor",
    "ExecutorSettings",
    "Plan",
    "RunEvents",
    "UnitOutcome",
    "WorkUnit",
]

#: Version of the payload `Plan.payload` writes (`misen.worker.execute_payload` reads it).
PAYLOAD_VERSION = 1
#: Outcomes after which dependents may run.
OK_STATUSES = frozenset({"done", "cached"})
#: Every outcome status an executor may report. ``queued``: submitted and left running (a detached run).
STATUSES = ("done", "cached", "failed", "timeout", "cancelled", "skipped", "queued")
#: Outcomes that are not failures of the run (a detached run's queued units).
SUCCESS_STATUSES = frozenset({"done", "cached", "queued"})


@attrs.frozen(eq=False)
class WorkUnit:
    """One schedulable piece of work."""

    #: The unit's id: the hash of its root task.
    id: str
    #: The task this unit produces (cacheable, or a non-cacheable task requested by name).
    root: Task[Any]
    #: The root and the non-cacheable tasks it needs that run inline, dependencies first.
    tasks: tuple[Task[Any], ...]
    #: What the unit needs: the root's resources (the inlined tasks run inside them).
    resources: Resources
    #: Ids of the units this one waits for.
    deps: tuple[str, ...]
    #: A short human label (``"train(lr=0.1, dim=256)"``).
    label: str


@attrs.frozen
class UnitOutcome:
    """How a unit ended."""

    status: str
    error: str | None = None
    log: str | None = None
    duration: float = 0.0
    where: str = ""

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UnitOutcome:
        return cls(**{k: data[k] for k in ("status", "error", "log", "duration", "where") if k in data})


@attrs.define
class Plan:
    """The work of one run: units in dependency order, plus what a worker needs to execute them."""

    units: dict[str, WorkUnit]
    run_id: str
    #: ``Workspace.spec()`` of the run's workspace, for workers to open it.
    workspace_spec: dict[str, Any]
    #: The snapshot workers import the project from (``None``: import from the live tree).
    snapshot: Path | None = None
    #: Environment from ``.env``/``.env.local`` for every task process.
    env: dict[str, str] = attrs.field(factory=dict)
    #: Name of the executor running the plan (recorded in provenance).
    executor: str = ""
    #: When the run started (``time.time()``): of two runs racing for a task, the earlier one waits for it.
    started: float = 0.0
    #: Wait for tasks other runs hold instead of failing on them (``run --wait``).
    wait: bool = False
    #: Native environments (issue 19): activation by ``@meta(environment=...)`` name, ``""`` for the default;
    #: filled by the runner from the environment plugin (`misen.environment`), applied by `misen.worker`.
    activations: dict[str, Activation] = attrs.field(factory=dict)

    def dependents(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {uid: [] for uid in self.units}
        for unit in self.units.values():
            for dep in unit.deps:
                out.setdefault(dep, []).append(unit.id)
        return out

    def payload(self, unit_id: str, **extra: Any) -> bytes:
        """The bytes a worker process needs to run one unit (see `misen.worker.execute_payload`)."""
        unit = self.units[unit_id]
        body = {
            "v": PAYLOAD_VERSION,
            "snapshot": str(self.snapshot) if self.snapshot else None,
            "env": dict(self.env),
            # The unit's native environment (issue 19), applied by the worker after the environment files.
            "activation": self.activations.get(activation_key(unit)),
            "workspace": self.workspace_spec,
            "run_id": self.run_id,
            "run_started": self.started,
            "wait": self.wait,
            "executor": self.executor,
            "sys_path": [p for p in sys.path if p],
            "unit": pickle.dumps(unit, protocol=5),
            "extra": extra,
        }
        return pickle.dumps(body, protocol=5)


class RunEvents:
    """The one channel from an executor back to misen while a run goes on.

    Executors call `unit_started` when a unit begins and `unit_finished` when it ends (every unit of the plan,
    including those skipped or cancelled). misen turns these calls into the lifecycle hooks
    (``misen_unit_started``/``misen_unit_finished``) that every observer implements, the terminal display
    included, so an executor never talks to a display or a plugin itself.

    Interrupts: Ctrl-C raises `KeyboardInterrupt` in the thread that called `Executor.execute`; the executor
    stops what it started, reports what ended, and lets the exception propagate (or returns). A cancel asked
    for from elsewhere (an observer calling `cancel`, SIGTERM to the run) sets `cancel_requested`, which an
    executor polls between units; it then stops started units, ends the rest ``cancelled`` and returns.
    Units an executor never reported end ``cancelled`` in the run's report.
    """

    def __init__(
        self,
        on_start: Callable[[WorkUnit, str], None] | None = None,
        on_finish: Callable[[WorkUnit, UnitOutcome], None] | None = None,
    ) -> None:
        self._on_start = on_start
        self._on_finish = on_finish
        self._cancel = threading.Event()

    @property
    def cancel_requested(self) -> bool:
        """Whether the run was asked to stop (see the class docstring)."""
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Ask the executor to stop: started units are stopped, the rest end ``cancelled``."""
        self._cancel.set()

    def unit_started(self, unit: WorkUnit, where: str) -> None:
        """Report that ``unit`` started; ``where`` says where (``"local worker 3 (pid 1234)"``)."""
        if self._on_start:
            self._on_start(unit, where)

    def unit_finished(self, unit: WorkUnit, outcome: UnitOutcome) -> None:
        """Report how ``unit`` ended."""
        if self._on_finish:
            self._on_finish(unit, outcome)


@attrs.define
class ExecutorSettings:
    """Settings shared by all executors (plugins subclass this with their own fields)."""


class Executor:
    """Base class of every executor. Every extension point is declared here, with its default."""

    #: Registry name (``"local"``), chosen with ``[executor] type`` or ``--executor-type``.
    PLUGIN_NAME: ClassVar[str] = ""
    #: Other names that select this executor.
    ALIASES: ClassVar[tuple[str, ...]] = ()
    #: The attrs class the ``[executor]`` section (or keyword arguments) is structured into.
    Settings: ClassVar[type[Any]] = ExecutorSettings
    #: Whether units run in other processes from a snapshot of the project (true for anything that starts
    #: processes); ``False`` for executors that run units in the calling process (on its threads), which may
    #: then use workspaces that live in this process only (``Workspace.SHARED_ACROSS_PROCESSES = False``).
    SNAPSHOT: ClassVar[bool] = True
    #: Whether ``run --detach`` can leave this executor's units running after misen exits (a scheduler keeps
    #: them); then ``Settings`` has a ``detach`` field that ``--detach`` sets.
    CAN_DETACH: ClassVar[bool] = False

    def __init__(self, settings: Any = None, **overrides: Any) -> None:
        if settings is None:
            settings = structure_settings(self.Settings, overrides, where=f"{type(self).__name__}(...)")
        elif overrides:
            settings = attrs.evolve(settings, **overrides)
        self.settings = settings

    def snapshot_root(self, workspace: Workspace) -> Path | None:
        """Where snapshots of the project go for this executor (a folder every worker can read, e.g. on a
        shared file system for a cluster); ``None`` (the default): the workspace's own folder, else the user's
        cache directory."""
        return None

    def check(self, plan: Plan) -> None:
        """Reject, before anything runs, units this executor can never run (`misen.errors.ResourceError`)."""

    def execute(self, plan: Plan, workspace: Workspace, events: RunEvents) -> dict[str, UnitOutcome]:
        """Run every unit of ``plan``; block until all ended; return each unit's outcome by id.

        Call ``events.unit_started``/``unit_finished`` as units start and end. Units whose dependencies did not
        succeed end ``skipped``. When ``events.cancel_requested`` becomes true, stop started units, mark the rest
        ``cancelled`` and return; on Ctrl-C (`KeyboardInterrupt` in this thread) stop started units and let it
        propagate (see `RunEvents`). ``workspace`` is the run's workspace instance: executors that run units in
        this process use it directly.
        """
        raise NotImplementedError

    def describe(self) -> str:
        return self.PLUGIN_NAME
