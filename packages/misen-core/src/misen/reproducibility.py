"""Reproducibility tools: why a task has the identity it has, accepting harmless edits, verifying results."""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

from misen import cache
from misen.code_text import code_changes, diff_lines
from misen.environment import activated, current_activation, explain_lines
from misen.fingerprint import Fingerprint
from misen.labels import task_labels
from misen.resources import AssignedResources
from misen.serializer import save_result
from misen.session import current_session
from misen.tasks import RuntimeArgument, Task, iter_graph
from misen.worker import call_task
from misen.workspace import Workspace

__all__ = ["VerifyResult", "accept", "explain", "relink", "resolved_from_workspace", "verify"]


def _where(fn: Any) -> str:
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else "?"


def resolved_from_workspace(task: Task[Any], ws: Workspace) -> str | None:
    """The task's resolved hash from its dependencies' stored results, or ``None`` if one is missing."""
    hashes: dict[bytes, str] = {}

    def visit(t: Task[Any]) -> bool:
        for dep in t.dependencies:
            if dep._id_bytes in hashes:
                continue
            if dep.cacheable:
                rh = cache.result_hash(ws, dep)
                if rh is None:
                    return False
                hashes[dep._id_bytes] = rh
            else:
                if not visit(dep):
                    return False
                hashes[dep._id_bytes] = "x" + dep.resolved_hash(hashes)
        return True

    if not visit(task):
        return None
    return task.resolved_hash(hashes)


def relink(tasks: list[Task[Any]], ws: Workspace) -> list[Task[Any]]:
    """Give tasks whose inputs are unchanged the result they already have (early cutoff, without running)."""
    linked = []
    for task in iter_graph(tasks):
        if not task.cacheable or cache.is_cached(ws, task):
            continue
        resolved = resolved_from_workspace(task, ws)
        if resolved is None:
            continue
        result = cache.resolved_result(ws, resolved)
        if result is not None:
            fp = task.fingerprint
            cache.link(ws, task, resolved=resolved, result=result, fingerprint=fp.as_dict() if fp else None)
            linked.append(task)
    return linked


def explain(task: Task[Any], ws: Workspace) -> list[str]:
    """What enters ``task``'s identity, its status, and for a stale task exactly what changed."""
    m = task.meta
    lines = [f"task {task.name} ({_where(task.fn)})", f"  id: {m.id or '(none: run `misen fill`)'}"]
    lines.append(f"  hash: {task.hash}")
    lines.append("  arguments:")
    for name, value in sorted(task.arguments.items()):
        note = ""
        if name in m.exclude:
            note = "  (excluded from the identity)"
        elif type(value) is RuntimeArgument:
            note = "  (run-time value, not in the identity)"
        elif name in m.defaults and m.defaults[name] == value:
            note = "  (equals its @meta default: left out of the identity)"
        shown = f"<task {value.name} {value.hash[:12]}>" if isinstance(value, Task) else repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        lines.append(f"    {name} = {shown}{note}")
    fp = task.fingerprint
    if fp is None:
        lines.append("  code: not tracked (code_changes = \"ignore\")" if not task._fp_bytes else "  code: (no source)")
    else:
        lines.append(f"  code fingerprint: {fp.digest}")
        for item in fp.items:
            lines.append(f"    {item.kind} {item.name} ({item.file}:{item.line}) {item.digest[:12]}")
    status = cache.status(ws, task) if task.cacheable else "not cacheable"
    lines.append(f"  status: {status}")

    lines.extend(explain_lines(task, ws))
    if status == "stale":
        rec = cache.stale_record(ws, task) or {}
        old = rec.get("fingerprint")
        diff = Fingerprint.diff(old, fp.as_dict()) if fp is not None else []
        if diff:
            lines.append("  changed since the cached result:")
            changes = code_changes(task, ws)  # with the code itself, old against new, where it was kept
            lines.extend(f"    {d}" for d in (diff_lines(changes) if changes else diff))
        else:
            changed = [d for d in task.dependencies if d.cacheable and not cache.is_cached(ws, d)]
            if changed:
                labels = task_labels(changed)
                lines.append("  its code is unchanged; these dependencies changed:")
                lines.extend(f"    {labels[d.hash]}" for d in changed)
            else:
                lines.append("  its code is unchanged; a dependency's result changed")
    elif status == "failed":
        failure = cache.failure(ws, task) or {}
        lines.append(f"  last failure: {failure.get('error')} (log: {failure.get('log')})")
    return lines


def accept(tasks: list[Task[Any]], ws: Workspace) -> list[tuple[Task[Any], str]]:
    """Declare that the current code produces the stale results of ``tasks``: link them, run nothing."""
    out: list[tuple[Task[Any], str]] = []
    for task in iter_graph(tasks):
        if not task.cacheable or cache.is_cached(ws, task):
            continue
        rec = cache.stale_record(ws, task)
        if rec is None:
            continue
        fp = task.fingerprint
        cache.link(ws, task, resolved=str(rec.get("resolved") or ""), result=str(rec["result"]), fingerprint=fp.as_dict() if fp else None)
        current = ws.get_record("task", task.hash) or {}
        current["accepted_from"] = {"task": rec.get("task"), "time": time.time()}
        ws.put_record("task", task.hash, current)
        out.append((task, f"accepted: now uses the result of {str(rec.get('task'))[:12]}"))
    for task in relink(tasks, ws):
        out.append((task, "inputs unchanged: linked to its existing result"))
    return out


@attrs.frozen
class VerifyResult:
    """The outcome of recomputing one cached task."""

    task: Task[Any]
    status: str  # "same" | "different" | "not cached" | "error"
    stored: str | None = None
    recomputed: str | None = None
    error: str | None = None


def verify(tasks: list[Task[Any]], ws: Workspace, sample: int | None = None) -> list[VerifyResult]:
    """Recompute cached results in a scratch directory and compare result hashes; the workspace is unchanged."""
    candidates = [t for t in iter_graph(tasks) if t.cacheable]
    if sample is not None and sample < len(candidates):
        candidates = random.sample(candidates, sample)
    results: list[VerifyResult] = []
    for task in candidates:
        stored = cache.result_hash(ws, task)
        if stored is None:
            results.append(VerifyResult(task, "not cached"))
            continue
        try:
            # Recomputed in the task's current native environment (issue 19), as a run would.
            with tempfile.TemporaryDirectory(prefix="misen-verify-") as tmp, activated(
                current_activation(task, current_session().project_root(), ws, build=True)
            ):
                values: dict[bytes, Any] = {}
                _compute(task, ws, values, Path(tmp), call_task)
                new_hash, _ = save_result(values[task._id_bytes], Path(tmp) / "result", task.meta.serializer)
        except Exception as exc:
            results.append(VerifyResult(task, "error", stored, None, f"{type(exc).__name__}: {exc}"))
            continue
        results.append(VerifyResult(task, "same" if new_hash == stored else "different", stored, new_hash))
    return results


def _compute(task: Task[Any], ws: Workspace, values: dict[bytes, Any], scratch: Path, call_task: Any, top: bool = True) -> None:
    for dep in task.dependencies:
        if dep._id_bytes in values:
            continue
        if dep.cacheable:
            values[dep._id_bytes] = cache.load(ws, dep)
        else:
            _compute(dep, ws, values, scratch, call_task, top=False)
    runtime: dict[str, Any] = {}
    for value in task.arguments.values():
        if type(value) is RuntimeArgument:
            if value.name == "WORK_DIR":
                d = scratch / f"work-{task.hash[:12]}"
                d.mkdir(exist_ok=True)
                runtime["WORK_DIR"] = d
            else:
                res = AssignedResources.from_process(task.resources.gpu_runtime)
                runtime["ASSIGNED_RESOURCES"] = res
                runtime["ASSIGNED_RESOURCES_PER_NODE"] = [res]
    values[task._id_bytes] = call_task(task, values, runtime)
