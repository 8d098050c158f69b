"""Running task graphs: choosing backends, planning work units, snapshotting, and reporting the outcome."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from misen.errors import MisenError, NotCachedError
from misen.executor import SUCCESS_STATUSES, Executor, Plan, RunEvents, UnitOutcome, WorkUnit
from misen.tasks import Task, iter_graph
from misen.workspace import Workspace

__all__ = [
    "RunReport",
    "build_plan",
    "resolve_executor",
    "resolve_workspace",
    "run",
    "task_result",
]

_WORKSPACES: dict[str, Workspace] = {}


def _backend(kind: str, value: Any, section: dict[str, Any], where: str, default: str) -> Any:
    from misen.plugins import registry
    from misen.settings import structure_settings

    name = value if isinstance(value, str) else section.get("type", default)
    cls = registry().get(kind, name)
    configured = section.get("type")
    data: dict[str, Any] = {}
    if configured is not None:
        try:
            same = registry().get(kind, configured) is cls
        except MisenError:
            same = False
        if same:
            data = {k: v for k, v in section.items() if k != "type"}
    return cls, structure_settings(cls.Settings, data, where=where)


def default_name(kind: str) -> str:
    from misen.plugins import registry

    table = registry().executors() if kind == "executor" else registry().workspaces()
    preferred, fallback = ("local", "in-process") if kind == "executor" else ("disk", "memory")
    return preferred if preferred in table else fallback


def resolve_workspace(workspace: Workspace | str | None = None) -> Workspace:
    """A `Workspace` from an instance, a type name (``"disk"``), or the configuration (``None``)."""
    if isinstance(workspace, Workspace):
        return workspace
    if workspace is not None and not isinstance(workspace, str):
        raise MisenError(f"workspace= must be a Workspace or a type name, got {type(workspace).__name__}")
    from misen.settings import load_settings, section_where

    settings = load_settings()
    cls, ws_settings = _backend(
        "workspace", workspace, settings.workspace, section_where(settings, "workspace"), default_name("workspace")
    )
    key = repr((cls.PLUGIN_NAME, ws_settings))
    ws = _WORKSPACES.get(key)
    if ws is None:
        ws = _WORKSPACES[key] = cls(ws_settings)
    return ws


def resolve_executor(executor: Executor | str | None = None) -> Executor:
    """An `Executor` from an instance, a type name (``"local"``, ``"in-process"``), or the configuration."""
    if isinstance(executor, Executor):
        return executor
    if executor is not None and not isinstance(executor, str):
        raise MisenError(f"executor= must be an Executor or a type name, got {type(executor).__name__}")
    from misen.settings import load_settings, section_where

    settings = load_settings()
    cls, ex_settings = _backend(
        "executor", executor, settings.executor, section_where(settings, "executor"), default_name("executor")
    )
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


def _roots(tasks: Task[Any] | Iterable[Task[Any]]) -> list[Task[Any]]:
    if isinstance(tasks, Task):
        return [tasks]
    roots = list(tasks)
    for t in roots:
        if not isinstance(t, Task):
            raise MisenError(f"expected Task objects to run, got {type(t).__name__}")
    return roots


def build_plan(roots: list[Task[Any]], workspace: Workspace, *, run_id: str = "", executor: str = "") -> tuple[Plan, int, int]:
    """The units needed to produce ``roots``; returns ``(plan, tasks already cached, tasks in the graph)``."""
    cached: dict[bytes, bool] = {}

    def is_cached(t: Task[Any]) -> bool:
        c = cached.get(t._id_bytes)
        if c is None:
            c = cached[t._id_bytes] = t.cacheable and workspace.is_cached(t)
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
    root_ids = {t._id_bytes for t in roots}
    order = list(iter_graph(roots))
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
        inline_order = [t for t in iter_graph(inline.values())] if inline else []
        inline_order = [t for t in inline_order if t._id_bytes in inline]
        units[task.hash] = WorkUnit(
            id=task.hash,
            root=task,
            tasks=(*inline_order, task),
            resources=task.resources,
            deps=tuple(deps),
            label=repr(task),
        )
    # Everything the run does not need to touch is up to date (a cached task's own inputs are never checked).
    n_cached = len(order) - len(needed)
    plan = Plan(units=units, run_id=run_id, workspace_spec=workspace.spec(), executor=executor)
    return plan, n_cached, len(order)


def stale_summary(plan: Plan, workspace: Workspace) -> list[tuple[Task[Any], list[str]]]:
    """The planned tasks that have a result for an earlier version of their code, with what changed."""
    out = []
    for unit in plan.units.values():
        task = unit.root
        if not task.cacheable:
            continue
        rec = workspace.stale_record(task)
        if rec is None:
            continue
        from misen.fingerprint import Fingerprint

        fp = task.fingerprint
        old = rec.get("fingerprint")
        if fp is not None:
            lines = Fingerprint.diff(old, fp.as_dict())
        else:
            lines = []
        if not lines:
            lines = ["a dependency's result changed" if old == (fp.as_dict() if fp else None) else "code changed"]
        out.append((task, lines))
    return out


def snapshot_root(executor: Executor, workspace: Workspace) -> Path:
    custom = getattr(executor, "snapshot_root", None)
    if callable(custom):
        path = custom(workspace)
        if path is not None:
            return Path(path)
    local = workspace.local_root()
    if local is not None:
        return local / "snapshots"
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "misen" / "snapshots"


def run(
    tasks: Task[Any] | Iterable[Task[Any]],
    executor: Executor | str | None = None,
    workspace: Workspace | str | None = None,
    *,
    reporter: Any = None,
) -> RunReport:
    """Run everything ``tasks`` need that is not cached yet, and block until it is done or failed."""
    from misen.reporting import PlainReporter
    from misen.settings import find_project_root, project_root
    from misen.snapshot import load_env_files, take_snapshot

    start = time.time()
    roots = _roots(tasks)
    for root in roots:
        root.check_ids()
    ws = resolve_workspace(workspace)
    if executor is None and not ws.SHARED_ACROSS_PROCESSES:
        executor = "in-process"  # nothing chosen, and the workspace cannot be shared: run here
    ex = resolve_executor(executor)
    if ex.SNAPSHOT and not ws.SHARED_ACROSS_PROCESSES:
        raise MisenError(
            f"the {ws.describe()} workspace lives in this process only, but the {ex.PLUGIN_NAME} executor runs tasks "
            "in other processes; use the in-process executor with it, or a workspace on disk"
        )
    reporter = reporter if reporter is not None else PlainReporter()
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    plan, n_cached, total = build_plan(roots, ws, run_id=run_id, executor=ex.PLUGIN_NAME)
    if plan.units:
        stale = stale_summary(plan, ws)
        if stale:
            reporter.stale(stale)
        root_dir = project_root()
        plan.env = load_env_files(root_dir)
        ex.check(plan)
        # Outside any project (no pyproject.toml or .misen.toml above the current directory, e.g. code imported
        # from an installed package) there is no source tree to freeze: workers import the installed code.
        if ex.SNAPSHOT and find_project_root() is not None:
            plan.snapshot = take_snapshot(root_dir, snapshot_root(ex, ws))
        # Native environments (issue 19): a plugin builds the prefix once; workers apply plan.activations.
        from misen.environment import prepare_environments

        prepare_environments(plan, root_dir, ws)
    reporter.start(plan, n_cached, total, ex, ws)
    hook = _hooks()

    def started(unit: WorkUnit, where: str) -> None:
        reporter.unit_started(unit, where)
        if hook is not None:
            _safe(hook.misen_unit_started, unit=unit, workspace=ws, where=where)

    def finished(unit: WorkUnit, outcome: UnitOutcome) -> None:
        reporter.unit_finished(unit, outcome)
        if hook is not None:
            _safe(hook.misen_unit_finished, unit=unit, workspace=ws, outcome=outcome)

    outcomes: dict[str, UnitOutcome] = {}
    interrupted = False
    if plan.units:
        try:
            outcomes = ex.execute(plan, ws, RunEvents(started, finished))
        except KeyboardInterrupt:
            interrupted = True
        finally:
            ws.sync()  # quick results were written without fsync: one flush for the whole run
    for uid in plan.units:
        if uid not in outcomes:
            outcomes[uid] = UnitOutcome(status="cancelled", error="run interrupted")
    report = RunReport(
        units=plan.units, outcomes=outcomes, already_cached=n_cached, total=total, duration=time.time() - start, run_id=run_id
    )
    if hook is not None:
        _safe(hook.misen_run_finished, outcomes=outcomes, executor=ex, workspace=ws)
    reporter.finish(report)
    if interrupted:
        raise KeyboardInterrupt
    return report


def _hooks() -> Any:
    from misen.plugins import registry

    return registry().pm.hook


def _safe(hook: Any, **kwargs: Any) -> None:
    import sys

    try:
        hook(**kwargs)
    except Exception as exc:
        print(f"misen: a lifecycle hook raised {type(exc).__name__}: {exc}", file=sys.stderr)


def task_result(task: Task[Any], workspace: Workspace | str | None = None, *, compute: bool = True) -> Any:
    """The result of ``task``.

    A cached result is loaded. Otherwise, with ``compute`` (the default), what the task needs is run first with
    the configured executor (the in-process one for a workspace that lives in this process only), as anyone who
    installed a project expects from ``TrainingSweep()["plot"].result()``; a failure raises
    `misen.errors.TaskFailedError` naming the task, its error and its log. With ``compute=False`` a missing result
    raises `misen.errors.NotCachedError` instead (what ``misen ... result NAME`` does).
    """
    from misen.errors import TaskFailedError

    task.check_ids()
    ws = resolve_workspace(workspace)
    if task.cacheable:
        try:
            return ws.load(task)
        except NotCachedError:
            failure = ws.failure(task)
            if not compute:
                extra = f"; its last attempt failed: {failure.get('error')}" if failure else "; run it first"
                raise NotCachedError(f"{task!r} is not cached in workspace {ws.describe()}{extra}") from None
            if ws.result_hash(task) is not None:
                ws.delete_record("task", task.hash)  # its stored result is damaged: compute it again
    from misen.worker import call_task

    if compute:
        missing = [t for t in _cacheable_inputs(task) if not ws.is_cached(t)]
        if missing:
            report = run(missing, workspace=ws)
            if not report.ok:
                unit, outcome = report.failed[0]
                where = f" (log: {outcome.log})" if outcome.log else ""
                raise TaskFailedError(
                    f"{task!r} could not be computed: {unit.label} ended {outcome.status}: {outcome.error}{where}"
                )
        if task.cacheable:
            return ws.load(task)

    values: dict[bytes, Any] = {}

    def compute_value(t: Task[Any]) -> None:
        if t._id_bytes in values:
            return
        if t.cacheable:
            values[t._id_bytes] = task_result(t, ws, compute=False)
            return
        for dep in t.dependencies:
            compute_value(dep)
        values[t._id_bytes] = call_task(t, values, _runtime_for(t, ws))

    compute_value(task)
    return values[task._id_bytes]


def _cacheable_inputs(task: Task[Any]) -> list[Task[Any]]:
    """The task itself if cacheable, else the cacheable tasks it reaches through non-cacheable ones."""
    if task.cacheable:
        return [task]
    out: dict[bytes, Task[Any]] = {}
    stack = [task]
    seen: set[bytes] = set()
    while stack:
        t = stack.pop()
        for dep in t.dependencies:
            if dep._id_bytes in seen:
                continue
            seen.add(dep._id_bytes)
            if dep.cacheable:
                out[dep._id_bytes] = dep
            else:
                stack.append(dep)
    return list(out.values())


def _runtime_for(task: Task[Any], ws: Workspace) -> dict[str, Any]:
    from misen.worker import _runtime_values

    return _runtime_values(task, ws, None)
