"""What ``misen workspace info`` and ``misen gc`` compute: usage figures and a garbage-collection plan.

gc never removes what may be in use: results committed in the last ``min_age`` seconds (a run may be about to
record them), results of tasks whose lock is held, temporary directories of live processes, held locks.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import time
from collections.abc import Iterable
from typing import Any

import attrs
from misen.cache import stored as stored_inline
from misen.errors import MisenError
from misen.inline import RECORD_KIND as INLINE_KIND
from misen.inline import inline_of, size_of

from misen_workspace_disk._fs import tree_size
from misen_workspace_disk._locks import idle_lock_files, remove_idle_lock, survey
from misen_workspace_disk.workspace import AREAS, DiskWorkspace

__all__ = ["GcPlan", "apply_gc", "human_size", "plan_gc", "reachable_results", "workspace_info"]

#: Record kinds whose ``result`` field refers to a stored result.
REFERRING_KINDS = ("task", "key", "resolved")


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def workspace_info(ws: DiskWorkspace) -> dict[str, Any]:
    """Sizes and counts of every area of the workspace."""
    areas = {area: tree_size(os.path.join(ws.root, area)) for area in AREAS}
    records = {kind: sum(1 for _ in ws.iter_records(kind)) for kind in ws.record_kinds()}
    lock_files = survey(os.path.join(ws.root, "locks"))
    areas["locks"] = tree_size(os.path.join(ws.root, "locks"), allocated=True)  # shard files are sparse
    snapshots_dir = os.path.join(ws.root, "snapshots")
    snapshots = len(os.listdir(snapshots_dir)) if os.path.isdir(snapshots_dir) else 0
    return {
        "directory": ws.root,
        "exists": os.path.isdir(ws.root),
        "size": sum(size for size, _ in areas.values()),
        "areas": {area: {"bytes": size, "files": files} for area, (size, files) in areas.items()},
        "results": sum(1 for _ in ws.iter_results()),
        # small results kept inside task records (misen.inline), found by their hash
        "inline_results": sum(1 for _ in ws.iter_records(INLINE_KIND)),
        "records": records,
        "logs": sum(
            name.endswith(".log") for _, _, files in os.walk(os.path.join(ws.root, "logs")) for name in files
        ),
        "locks": {"files": len(lock_files), "held": sum(held for _, held in lock_files)},
        "snapshots": snapshots,
    }


@attrs.define
class GcPlan:
    """What gc removes: results (hash, bytes, task names), records left pointing nowhere, idle locks, leftovers."""

    results: list[tuple[str, int, list[str]]] = attrs.field(factory=list)
    records: list[tuple[str, str]] = attrs.field(factory=list)
    locks: list[str] = attrs.field(factory=list)
    tmp: list[tuple[str, int]] = attrs.field(factory=list)
    kept_in_use: int = 0
    #: Results among ``results`` kept inside records (removed by removing ``records``).
    inline: set[str] = attrs.field(factory=set)

    @property
    def bytes(self) -> int:
        return sum(size for _, size, _ in self.results) + sum(size for _, size in self.tmp)


def _references(
    ws: DiskWorkspace, inline: dict[str, int] | None = None
) -> tuple[dict[str, set[str]], dict[str, list[str]], list[tuple[str, str, str]]]:
    """``(result -> referring task hashes, result -> task names, [(kind, key, result)])`` from every record;
    ``inline`` receives the small results kept inside records (`misen.inline`) with their sizes."""
    tasks_of: dict[str, set[str]] = {}
    names: dict[str, list[str]] = {}
    refs: list[tuple[str, str, str]] = []
    if inline is not None:
        keys = list(ws.iter_records(INLINE_KIND))
        for key, rec in ws.get_records(INLINE_KIND, keys).items():
            found = inline_of(rec, key)
            if found is not None:
                inline[key] = size_of(found)
    for kind in REFERRING_KINDS:
        keys = list(ws.iter_records(kind))
        for key, rec in ws.get_records(kind, keys).items():
            result = rec.get("result")
            if not isinstance(result, str):
                continue
            if inline is not None and (found := inline_of(rec, result)) is not None:
                inline.setdefault(result, size_of(found))
            refs.append((kind, key, result))
            if kind == "task":
                tasks_of.setdefault(result, set()).add(key)
                if rec.get("name"):
                    names.setdefault(result, []).append(str(rec["name"]))
            elif kind == "key" and isinstance(rec.get("task"), str):
                tasks_of.setdefault(result, set()).add(rec["task"])
    return tasks_of, names, refs


def plan_gc(ws: DiskWorkspace, *, keep: set[str] | None = None, min_age: float = 3600.0) -> GcPlan:
    """What gc would remove.

    Args:
        ws: The workspace.
        keep: Result hashes to keep (from `reachable_results`); ``None`` keeps every result a ``task`` or
            ``key`` record refers to (those are the results some task, of this or an earlier code version,
            would find), and removes only results nothing refers to.
        min_age: Results newer than this many seconds are kept (a run may be about to record them).
    """
    inline: dict[str, int] = {}
    tasks_of, names, refs = _references(ws, inline)
    if keep is None:
        keep = {result for kind, _, result in refs if kind in ("task", "key")}
    plan = GcPlan()
    now = time.time()
    for result in ws.iter_results():
        if result in keep:
            continue
        path = ws.result_dir(result)
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            continue
        if now - mtime < min_age or any(ws.lock_holder(t) is not None for t in tasks_of.get(result, ())):
            plan.kept_in_use += 1
            continue
        plan.results.append((result, tree_size(path)[0], sorted(set(names.get(result, ())))))
    # Small results kept in records: "removing" one removes the records that hold it.
    for result, size in inline.items():
        if result in keep:
            continue
        if any(ws.lock_holder(t) is not None for t in tasks_of.get(result, ())):
            plan.kept_in_use += 1
            continue
        plan.results.append((result, size, sorted(set(names.get(result, ())))))
        plan.inline.add(result)
        plan.records.append((INLINE_KIND, result))
    doomed = {r for r, _, _ in plan.results}
    for kind, key, result in refs:
        if result in doomed or not (ws.has_result(result) or result in inline):
            plan.records.append((kind, key))
    plan.locks = idle_lock_files(os.path.join(ws.root, "locks"))
    plan.tmp = ws.sweep_tmp(dry_run=True)
    return plan


def apply_gc(ws: DiskWorkspace, plan: GcPlan) -> int:
    """Carry out ``plan``; returns the bytes freed. Locks and results found in use meanwhile are left alone."""
    freed = 0
    for result, size, _ in plan.results:
        if result not in plan.inline:
            ws.delete_result(result)
        freed += size
    for kind, key in plan.records:
        rec = ws.get_record(kind, key)
        if rec is None:
            continue
        result = key if kind == INLINE_KIND else str(rec.get("result", ""))
        # A run may have stored the same result again since the plan was made.
        if result in plan.inline or not (ws.has_result(result) or stored_inline(ws, result, rec)):
            ws.delete_record(kind, key)
    for path in plan.locks:
        remove_idle_lock(path)
    freed += sum(size for _, size in ws.sweep_tmp())
    return freed


def load_object(spec: str) -> Any:
    """``module:attr`` -> the object (a class is instantiated with its defaults)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise MisenError(
            f"--experiment {spec!r}: expected MODULE:NAME, like my_project.experiments.training:Exp"
        )
    with contextlib.suppress(ImportError):
        from misen.session import project_root

        root = project_root()
        for extra in (root / "src", root):
            if extra.is_dir() and str(extra) not in sys.path:
                sys.path.insert(0, str(extra))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MisenError(f"--experiment {spec!r}: cannot import {module_name} ({exc})") from None
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise MisenError(f"--experiment {spec!r}: {module_name} has no attribute {attr}") from None
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as exc:
            raise MisenError(f"--experiment {spec!r}: cannot create it with its defaults ({exc})") from None
    return obj


def _roots(obj: Any) -> list[Any]:
    from misen.tasks import Task

    if isinstance(obj, Task):
        return [obj]
    if callable(getattr(obj, "tasks", None)):
        obj = obj.tasks()
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, Iterable) and not isinstance(obj, str | bytes):
        items = list(obj)
        if all(isinstance(t, Task) for t in items):
            return items
    raise MisenError(f"{obj!r} is not an experiment, a task or a collection of tasks")


def reachable_results(ws: DiskWorkspace, objects: list[Any]) -> set[str]:
    """Results the experiments (or tasks) in ``objects`` refer to: the current result of every cacheable task in
    their graphs, and the newest result of the same call under an earlier code version (kept for ``accept``)."""
    from misen.tasks import iter_graph

    roots = [root for obj in objects for root in _roots(obj)]
    tasks = [t for t in iter_graph(roots) if t.cacheable]
    keep: set[str] = set()
    for kind, keys in (("task", [t.hash for t in tasks]), ("key", [t.key_hash for t in tasks])):
        for rec in ws.get_records(kind, keys).values():
            if isinstance(rec.get("result"), str):
                keep.add(rec["result"])
    return keep
