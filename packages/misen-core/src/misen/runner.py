"""Running task graphs: choosing backends, planning work units, snapshotting, and reporting the outcome."""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from misen import cache
from misen.environment import prepare_environments
from misen.errors import MisenError
from misen.executor import SUCCESS_STATUSES, Executor, Plan, RunEvents, UnitOutcome, WorkUnit
from misen.fingerprint import Fingerprint
from misen.gitignore import ignore_directory
from misen.idcheck import check_unique_ids
from misen.labels import task_labels
from misen.reporting import PlainReporter, Reporter, ReporterPlugin
from misen.session import Session, current_session
from misen.snapshot import load_env_files, take_snapshot
from misen.tasks import Task, iter_graph, task_result
from misen.workspace import Workspace, resolve_workspace

__all__ = [
    "RunReport",
    "backend_settings",
    "build_plan",
    "resolve_executor",
    "resolve_workspace",
    "run",
    "task_result",
]


def backend_settings(kind: str, name: str | None, session: Session | None = None) -> tuple[type[Any], Any, str | None]:
    """``(class, settings, note)`` of the ``kind`` backend chosen by ``name`` (`misen.session.Session.backend`)."""
    return (session or current_session()).backend(kind, name)


def resolve_executor(executor: Executor | str | None = None, session: Session | None = None) -> Executor:
    """An `Executor` from an instance, a type name (``"local"``, ``"in-process"``), or the configuration."""
    if isinstance(executor, Executor):
        return executor
    if executor is not None and not isinstance(executor, str):
        raise MisenError(f"executor= must be an Executor or a type name, got {type(executor).__name__}")
    cls, ex_settings, _ = (session or current_session()).backend("executor", executor)
    return cls(ex_settings)  # type: ignore[no-any-return]


@attrs.define
class RunReport:
    """What a run did: every unit's outcome, and how many tasks were already cached."""

    units: dict[str, WorkUnit]
    outcomes: dict[str, UnitOutcome]
    already_cached: int = 0
    total: int = 0
    duration: float = 0.0
    run_id: str = ""
    #: When the run started (``time.time()``).
    started: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing failed (queued units of a detached run count as fine)."""
        return all(o.status in SUCCESS_STATUSES for o in self.outcomes.values())

    @property
    def failed(self) -> list[tuple[WorkUnit, UnitOutcome]]:
        return [(self.units[u], o) for u, o in self.outcomes.items() if o.status not in SUCCESS_STATUSES]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.outcomes.values():
            out[o.status] = out.get(o.status, 0) + 1
        return out

    def __repr__(self) -> str:  # a notebook shows this after `.run()`: keep it to one line
        counts = ", ".join(f"{v} {k}" for k, v in self.counts().items())
        return (
            f"RunReport(ok={self.ok}, {counts + ', ' if counts else ''}{self.already_cached} already cached, "
            f"duration={self.duration:.1f}s)"
        )


def _roots(tasks: Task[Any] | Iterable[Task[Any]]) -> list[Task[Any]]:
    if isinstance(tasks, Task):
        return [tasks]
    roots = list(tasks)
    for t in roots:
        if not isinstance(t, Task):
            raise MisenError(f"expected Task objects to run, got {type(t).__name__}")
    return roots


def _heal(task: Task[Any], ws: Workspace, rh: str, notes: list[str], record: dict[str, Any] | None = None) -> bool:
    """Whether the cached result ``rh`` of ``task`` still has all its files; if not, drop it (it is recomputed)
    and say so in ``notes``. ``record``: the task's record, which may hold the result itself."""
    damage = cache.check_stored(ws, rh, record=record)
    if damage is None:
        return True
    cache.drop_result(ws, task)
    notes.append(f"result of {task!r} was damaged ({damage}); recomputing")
    return False


def build_plan(
    roots: list[Task[Any]],
    workspace: Workspace,
    *,
    run_id: str = "",
    executor: str = "",
    notes: list[str] | None = None,
    force: Iterable[Task[Any]] = (),
) -> tuple[Plan, int, int]:
    """The units needed to produce ``roots``; returns ``(plan, tasks already cached, tasks in the graph)``.

    Cached results the run relies on (the roots' own and those of the dependencies of what it runs) are checked
    for missing or truncated files first: a damaged one is dropped and planned again, with a line in ``notes``.
    A task that gained a ``@meta(defaults)`` parameter takes over the result of its earlier code where
    `misen.cache.carry_over` allows it. Tasks in ``force`` (and so what depends on them) are planned even if
    cached.
    """
    notes = notes if notes is not None else []
    forced = {t._id_bytes for t in force}
    cached: dict[bytes, bool] = {}
    # The roots' records in one batch (a listing on S3); the rest of the graph is read as it is reached.
    asked = [t.hash for t in roots if t.cacheable and t._id_bytes not in forced]
    read = workspace.get_records("task", asked) if len(asked) > 1 else None
    batch = set(asked)

    def is_cached(t: Task[Any]) -> bool:
        c = cached.get(t._id_bytes)
        if c is None:
            c = False
            if t.cacheable and t._id_bytes not in forced:
                if read is not None and t.hash in batch:
                    found = cache.current(workspace, t, record=read.get(t.hash))  # None: it had no record
                else:
                    found = cache.current(workspace, t)
                if found is None and cache.carry_over(workspace, t):
                    found = cache.current(workspace, t)
                c = found is not None and _heal(t, workspace, found[0], notes, found[1])
            cached[t._id_bytes] = c
        return c

    needed: dict[bytes, Task[Any]] = {}
    stack = [t for t in roots if not is_cached(t)]
    for t in stack:
        needed[t._id_bytes] = t
    while stack:
        t = stack.pop()
        for dep in t.dependencies:
            if dep._id_bytes in needed or is_cached(dep):
                continue
            needed[dep._id_bytes] = dep
            stack.append(dep)
    # A forced task makes everything downstream of it (within the graph) run again too.
    order = list(iter_graph(roots))
    if forced:
        for task in order:
            if task._id_bytes not in needed and any(d._id_bytes in needed for d in task.dependencies):
                needed[task._id_bytes] = task
    root_ids = {t._id_bytes for t in roots}
    labels = task_labels(order) if needed else {}  # each unit labelled among its siblings: fit[lr=0.1, dim=256]
    units: dict[str, WorkUnit] = {}
    for task in order:
        if task._id_bytes not in needed:
            continue
        if not task.cacheable and task._id_bytes not in root_ids:
            continue  # runs inline inside the units that need it
        inline: dict[bytes, Task[Any]] = {}
        deps: dict[str, None] = {}
        todo = [task]
        while todo:
            cur = todo.pop()
            for dep in cur.dependencies:
                if dep.cacheable:
                    if dep._id_bytes in needed:
                        deps[dep.hash] = None
                elif dep._id_bytes not in inline:
                    inline[dep._id_bytes] = dep
                    todo.append(dep)
        inline_order = [t for t in iter_graph(inline.values()) if t._id_bytes in inline] if inline else []
        units[task.hash] = WorkUnit(
            id=task.hash,
            root=task,
            tasks=(*inline_order, task),
            resources=task.resources,
            deps=tuple(deps),
            label=labels.get(task.hash) or repr(task),
        )
    # Everything the run does not need to touch is up to date (a cached task's own inputs are never checked).
    n_cached = len(order) - len(needed)
    plan = Plan(units=units, run_id=run_id, workspace_spec=workspace.spec(), executor=executor)
    return plan, n_cached, len(order)


def stale_summary(plan: Plan, workspace: Workspace) -> list[tuple[Task[Any], list[str]]]:
    """The planned tasks that have a result for an earlier version of their code, with what changed."""
    out = []
    roots = [unit.root for unit in plan.units.values() if unit.root.cacheable]
    earlier = workspace.get_records("key", sorted({t.key_hash for t in roots}))  # one batch (a listing on S3)
    for task in roots:
        found = earlier.get(task.key_hash)
        rec = cache.stale_record(workspace, task, found) if found is not None else None
        if rec is None:
            continue
        fp = task.fingerprint
        old = rec.get("fingerprint")
        lines = Fingerprint.diff(old, fp.as_dict()) if fp is not None else []
        if not lines:
            lines = ["a dependency's result changed" if old == (fp.as_dict() if fp else None) else "code changed"]
        out.append((task, lines))
    return out


def snapshot_root(executor: Executor, workspace: Workspace) -> Path:
    """Where the run's snapshot goes: the executor's choice, else the workspace's folder, else the user cache."""
    path = executor.snapshot_root(workspace)
    if path is not None:
        return Path(path)
    local = workspace.local_root()
    if local is not None:
        return local / "snapshots"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "misen" / "snapshots"


def run(
    tasks: Task[Any] | Iterable[Task[Any]],
    executor: Executor | str | None = None,
    workspace: Workspace | str | None = None,
    *,
    reporter: Reporter | None = None,
    session: Session | None = None,
    force: Iterable[Task[Any]] = (),
    wait: bool = False,
) -> RunReport:
    """Run everything ``tasks`` need that is not cached yet, and block until it is done or failed.

    Progress goes to ``reporter`` (default: plain lines on standard error), which is registered as a plugin on
    the session's lifecycle hooks for the duration of the run, beside every other observer.

    When several runs race over the same tasks, a task another run is computing fails at once naming its holder
    (a duplicate never runs twice), except that a run waits for tasks of runs that started after it, so the run
    that started first always completes everything it asked for; ``wait=True`` makes this run wait for every
    holder.
    """
    session = session or current_session()
    start = time.time()
    roots = _roots(tasks)
    for root in roots:
        root.check_ids()
    check_unique_ids(roots)  # misen.idcheck: two functions sharing an @meta id fail before anything runs
    ws = resolve_workspace(workspace, session)
    session.adopt_workspace(ws)
    if executor is None and not ws.SHARED_ACROSS_PROCESSES and "type" not in session.settings.executor:
        executor = "in-process"  # nothing chosen, and the workspace cannot be shared: run here
    ex = resolve_executor(executor, session)
    if ex.SNAPSHOT and not ws.SHARED_ACROSS_PROCESSES:
        raise MisenError(
            f"the {ws.describe()} workspace lives in this process only, but the {ex.PLUGIN_NAME} executor runs tasks "
            "in other processes; use the in-process or threads executor with it, or a workspace on disk"
        )
    reporter = reporter if reporter is not None else PlainReporter()
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    notes: list[str] = []
    plan, n_cached, total = build_plan(roots, ws, run_id=run_id, executor=ex.PLUGIN_NAME, notes=notes, force=force)
    plan.started, plan.wait = start, wait
    for note in notes:
        print(f"misen: {note}", file=sys.stderr)
    stale: list[tuple[Task[Any], list[str]]] = []
    if plan.units:
        stale = stale_summary(plan, ws)
        root_dir = session.project_root()
        plan.env = load_env_files(root_dir)
        ex.check(plan)
        # Outside any project (no pyproject.toml or .misen.toml above the current directory, e.g. code imported
        # from an installed package) there is no source tree to freeze: workers import the installed code.
        if ex.SNAPSHOT and session.find_project_root() is not None:
            plan.snapshot = take_snapshot(root_dir, snapshot_root(ex, ws))
        # Native environments (issue 19): a plugin builds the prefix once; workers apply plan.activations.
        prepare_environments(plan, root_dir, ws)
    hook = session.hook
    observer = ReporterPlugin(reporter, run_id)
    session.registry.pm.register(observer)
    try:
        events = RunEvents(
            lambda unit, where: _safe(hook.misen_unit_started, unit=unit, workspace=ws, where=where, run_id=run_id),
            lambda unit, outcome: _safe(
                hook.misen_unit_finished, unit=unit, workspace=ws, outcome=outcome, run_id=run_id
            ),
        )
        _safe(
            hook.misen_run_started,
            plan=plan,
            executor=ex,
            workspace=ws,
            cached=n_cached,
            total=total,
            stale=stale,
            events=events,
            run_id=run_id,
        )
        outcomes: dict[str, UnitOutcome] = {}
        interrupted = False
        if plan.units:
            try:
                outcomes = ex.execute(plan, ws, events)
            except KeyboardInterrupt:
                interrupted = True
            finally:
                ws.sync()  # quick results were written without fsync: one flush for the whole run
                ignore_directory(ws.local_root())  # misen.gitignore: the workspace keeps itself out of git
        for uid in plan.units:
            if uid not in outcomes:
                outcomes[uid] = UnitOutcome(status="cancelled", error="run interrupted")
        report = RunReport(
            units=plan.units,
            outcomes=outcomes,
            already_cached=n_cached,
            total=total,
            duration=time.time() - start,
            run_id=run_id,
            started=start,
        )
        _safe(hook.misen_run_finished, outcomes=outcomes, executor=ex, workspace=ws, report=report, run_id=run_id)
    finally:
        session.registry.pm.unregister(observer)
        close = getattr(reporter, "close", None)
        if close is not None:  # lines a reporter holds back come out even when the run ends by an error
            with contextlib.suppress(Exception):
                close()
    if interrupted:
        raise KeyboardInterrupt
    return report


def _safe(hook: Any, **kwargs: Any) -> None:
    try:
        hook(**kwargs)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        print(f"misen: a lifecycle hook raised {type(exc).__name__}: {exc}", file=sys.stderr)


