"""``run --dry-run`` (what would run, and why) and ``run --force`` (recompute a task and its dependents)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from misen import cache
from misen.errors import MisenError
from misen.fingerprint import Fingerprint
from misen.runner import build_plan
from misen.tasks import Task, iter_graph

if TYPE_CHECKING:
    from misen.workspace import Workspace

__all__ = ["dependents", "dry_run_lines", "force", "forced_tasks"]


def forced_tasks(names: Iterable[str], named: dict[str, Task[Any]], roots: list[Task[Any]]) -> list[Task[Any]]:
    """The tasks ``--force NAME`` names: a named task (in every sweep member), or every task of a function."""
    graph = list(iter_graph(roots))
    out: dict[str, Task[Any]] = {}
    for name in names:
        matched = [t for key, t in named.items() if key == name or key.startswith(name + "[")]
        if not matched:
            matched = [t for t in graph if t.name == name or getattr(t.fn, "__name__", None) == name]
        if not matched:
            functions = sorted({getattr(t.fn, "__name__", t.name) for t in graph})
            tasks = sorted({k.split("[", 1)[0] for k in named})
            raise MisenError(
                f"--force {name}: no named task or task function called {name!r} "
                f"(named tasks: {', '.join(tasks) or 'none'}; functions: {', '.join(functions)})"
            )
        for task in matched:
            if not task.cacheable:
                raise MisenError(f"--force {name}: {task.name} is not cached (cache=False), so it always runs")
            out.setdefault(task.hash, task)
    return list(out.values())


def dependents(forced: list[Task[Any]], roots: list[Task[Any]]) -> list[Task[Any]]:
    """The forced tasks and every task of the graph downstream of one, dependencies first."""
    hit = {t._id_bytes for t in forced}
    out = []
    for task in iter_graph(roots):
        if task._id_bytes in hit or any(d._id_bytes in hit for d in task.dependencies):
            hit.add(task._id_bytes)
            out.append(task)
    return out


def force(tasks: list[Task[Any]], workspace: Workspace) -> int:
    """Make ``tasks`` recompute without renewing their ids; returns how many had a result.

    Each current result is set aside, not deleted: its task record and the record of its inputs (which would
    let an identical computation reuse it) move to a ``forced`` record, and the stored result stays.
    """
    count = 0
    for task in tasks:
        if not task.cacheable:
            continue
        record = workspace.get_record("task", task.hash)
        if record is None:
            continue
        resolved = record.get("resolved")
        resolved_record = workspace.get_record("resolved", resolved) if isinstance(resolved, str) else None
        workspace.put_record(
            "forced",
            task.hash,
            {"time": time.time(), "name": task.name, "task": record, "resolved": resolved_record},
        )
        if isinstance(resolved, str):
            workspace.delete_record("resolved", resolved)
        workspace.delete_record("task", task.hash)
        count += 1
    return count


def _reasons(task: Task[Any], workspace: Workspace, planned: set[str], labels: dict[str, str]) -> list[str]:
    reasons: list[str] = []
    failure = cache.failure(workspace, task) if task.cacheable else None
    if failure:
        error = str(failure.get("error") or failure.get("status") or "failed").strip().splitlines()
        reasons.append(f"failed last time ({error[-1] if error else 'failed'})")
    stale = cache.stale_record(workspace, task) if task.cacheable else None
    if stale is not None:
        fp = task.fingerprint
        old = stale.get("fingerprint")
        diff = Fingerprint.diff(old, fp.as_dict()) if fp is not None and old else []
        if diff:
            text = "; ".join(diff[:3]) + (" …" if len(diff) > 3 else "")
            reasons.append(f"code {text}" if text.startswith(("changed", "added", "removed")) else f"code changed: {text}")
        else:
            reasons.append("an upstream task's code or result changed")
    elif task.cacheable and not failure:
        reasons.append("not cached (no result for these argument values)")
    elif not task.cacheable:
        reasons.append("not cached (cache=False)")
    upstream = [labels.get(d.hash, d.name) for d in task.dependencies if d.hash in planned]
    if upstream:
        shown = ", ".join(upstream[:3]) + (f" and {len(upstream) - 3} more" if len(upstream) > 3 else "")
        reasons.append(f"needs {shown}, which will run")
    return reasons


def dry_run_lines(
    roots: list[Task[Any]], workspace: Workspace, labels: dict[str, str], forced: list[Task[Any]]
) -> tuple[list[tuple[str, str]], int, int]:
    """``([(label, reasons)], tasks that would run, tasks in the graph)`` for ``run --dry-run``."""
    plan, _cached, total = build_plan(roots, workspace)
    forced_ids = {t.hash for t in forced}
    downstream = {t.hash for t in dependents(forced, roots) if t.cacheable}
    planned = set(plan.units) | downstream
    lines = []
    for task in iter_graph(roots):
        if task.hash not in planned:
            continue
        if task.hash in forced_ids:
            reasons = ["forced (--force); its current result is kept aside"]
        elif task.hash in downstream and task.hash not in plan.units:
            reasons = ["depends on a forced task"]
        else:
            reasons = _reasons(task, workspace, planned, labels)
        lines.append((labels.get(task.hash, task.name), "; ".join(reasons)))
    return lines, len(planned), total
