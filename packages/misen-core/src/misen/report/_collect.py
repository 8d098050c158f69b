"""What a report shows, gathered from an experiment's task graph and its workspace into one JSON-able dict.

Every task gets its state, label, dependencies, provenance (duration, host, worker or job, resources asked and
bound, when computed), result size, the tail of its newest log (a stale task: the log of the run that computed
its earlier version's result), and, where there is one, its error, its code diff (stale tasks) and a preview of
its result. Runs become timelines built from the provenance of stored results and from failure records.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs

from misen import cache
from misen.code_text import code_changes
from misen.errors import NotCachedError
from misen.inline import inline_of, load_inline, size_of
from misen.labels import task_labels
from misen.report._files import IN_RECORD, read_log, result_size
from misen.report._runs import earlier_versions, failure_bar, ordered_runs, placement, worker_of
from misen.report._tables import plain_args, scalars, sweep_tables
from misen.serializer import load_result, preview_value
from misen.tasks import Task, iter_graph

if TYPE_CHECKING:
    from misen.workspace import Workspace

__all__ = ["Limits", "collect", "task_states"]

_BAD = ("failed", "skipped")


@attrs.frozen
class Limits:
    """How much a report embeds, so that a sweep of any size still gives a file a browser opens quickly.

    Attributes:
        previews: Results loaded for a preview (named tasks first, then the graph in order).
        table_rows: Results loaded for the sweep tables (per function with several tasks).
        logs: Logs embedded (those of failed tasks always; then in graph order); others are named by path.
        log_chars: Characters of each log kept (its end: the last lines matter most).
        image_bytes: Largest picture embedded as a preview.
    """

    previews: int = 100
    table_rows: int = 2000
    logs: int = 2000
    log_chars: int = 20_000
    image_bytes: int = 3 * 1024 * 1024


def task_states(
    tasks: list[Task[Any]],
    ws: Workspace,
    records: dict[str, dict[str, Any]] | None = None,
    opened: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The state of every task (dependencies first in ``tasks``), by hash.

    ``done``, ``stale`` (a result of an earlier version of the code exists), ``failed`` (its last attempt
    failed), ``running`` (a process holds its lock), ``skipped`` (cannot run: a dependency failed) or ``pending``.
    A task that is not cached is as done as its dependencies. ``records``: the ``task`` records of ``tasks``
    already read (`Workspace.get_records`), so that a done task costs one existence check; ``opened`` receives
    the local directory of each done task's result, by hash.
    """
    states: dict[str, str] = {}
    for task in tasks:
        deps = [states[d.hash] for d in task.dependencies]
        if task.cacheable:
            rec = records.get(task.hash) if records is not None else None
            result = rec.get("result") if rec is not None else None
            directory = ws.open_result(result) if isinstance(result, str) else None
            if directory is None and isinstance(result, str):
                directory = inline_of(rec, result)  # a small result kept in the record (misen.inline)
            if directory is not None and opened is not None:
                opened[task.hash] = directory
            state = "done" if directory is not None else cache.status(ws, task)
            if state == "pending":
                if any(s in _BAD for s in deps):
                    state = "skipped"
                elif ws.lock_holder(task.hash) is not None:
                    state = "running"
        elif any(s in _BAD for s in deps):
            state = "skipped"
        elif ws.get_record("failure", task.hash) is not None:
            state = "failed"
        else:
            order = ("running", "pending", "stale", "done")
            state = next((s for s in order if s in deps), "done")
        states[task.hash] = state
    return states


def _resources(task: Task[Any], memo: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The resources the task asks for; computed once per function when they do not depend on arguments."""
    fixed = not callable(task.meta.resources)
    if fixed and task.name in memo:
        return memo[task.name]
    try:
        res = task.resources
    except Exception as exc:
        return {"error": str(exc)}
    asked = {k: v for k, v in attrs.asdict(res).items() if v not in (None, "", [], {})}
    if not asked.get("gpus"):
        asked.pop("gpu_runtime", None)
    if fixed:
        memo[task.name] = asked
    return asked


def _preview_json(value: Any, task: Task[Any], limits: Limits) -> dict[str, Any] | None:
    preview = preview_value(value, task.meta.serializer)
    if preview is None:
        return None
    if preview.kind == "image":
        data = bytes(preview.data) if isinstance(preview.data, bytes | bytearray) else b""
        if not data or len(data) > limits.image_bytes:
            return {"kind": "text", "data": f"a picture of {len(data):,} bytes (too large to embed)"}
        return {"kind": "image", "mime": preview.mime, "data": base64.b64encode(data).decode()}
    return {"kind": preview.kind, "data": str(preview.data)}


def collect(
    named: dict[str, Task[Any]], ws: Workspace, *, title: str = "", limits: Limits | None = None
) -> dict[str, Any]:
    """The report's data for the named tasks of an experiment and everything they depend on.

    The workspace is read in bulk (every ``task`` record, then the ``resolved`` records of the done tasks), each
    result's manifest once for its size, and what siblings share is worked out once per function: resources
    asked, the sweep table's arguments, the code diff of stale tasks and where a run's bars go.
    """
    limits = limits or Limits()
    tasks = list(iter_graph(named.values()))
    labels = task_labels(tasks)
    names: dict[str, list[str]] = {}
    for name, task in named.items():
        names.setdefault(task.hash, []).append(name)
    records = ws.get_records("task", [t.hash for t in tasks if t.cacheable])
    opened: dict[str, Any] = {}
    states = task_states(tasks, ws, records, opened)
    resolved = ws.get_records("resolved", sorted({str(records[h].get("resolved")) for h in opened}))
    earlier = earlier_versions(ws, [t for t in tasks if states[t.hash] == "stale"])
    fns = [t.name for t in tasks]
    siblings: dict[str, int] = {}
    for fn in fns:
        siblings[fn] = siblings.get(fn, 0) + 1
    # Results to load: named tasks first for previews, then the rest; sweep rows for functions with siblings.
    named_first = [t for t in tasks if t.hash in names] + [t for t in tasks if t.hash not in names]
    done = [t.hash for t in named_first if t.hash in opened and states[t.hash] == "done"]
    preview_ids = set(done[: limits.previews])
    args_memo: dict[str, dict[str, Any]] = {}
    asked_memo: dict[str, dict[str, Any]] = {}
    places: dict[tuple[Any, ...], tuple[str, str, str]] = {}
    diffs: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    tables: dict[str, list[dict[str, Any]]] = {}
    loaded_rows = logs_read = 0
    out_tasks: list[dict[str, Any]] = []
    runs: dict[str, dict[str, Any]] = {}
    failures: list[dict[str, Any]] = []
    for task, fn in zip(tasks, fns, strict=True):
        h = task.hash
        state = states[h]
        cacheable = task.cacheable
        entry: dict[str, Any] = {
            "id": h,
            "label": labels.get(h, fn),
            "fn": fn,
            "state": state,
            "names": names.get(h, []),
            "deps": [d.hash for d in task.dependencies],
            "cacheable": cacheable,
            "repr": repr(task),
            "resources": _resources(task, asked_memo) if cacheable else {},
        }
        prov: dict[str, Any] = {}
        where = opened.get(h) if state == "done" else None
        if where is not None:
            rec = records[h]
            res = resolved.get(str(rec.get("resolved")))
            found = res.get("provenance") if res is not None else None
            prov = found if isinstance(found, dict) else {}
            entry["computed"] = prov.get("end") or (
                prov["start"] + prov.get("duration", 0) if "start" in prov else rec.get("time")
            )
            entry["size"] = size_of(where) if isinstance(where, dict) else result_size(where)
            if rec.get("accepted_from"):
                entry["accepted"] = True
        if prov:
            lane, worker, bound = _placement(prov, places)
            entry.update(
                duration=prov.get("duration"), host=prov.get("host"), worker=worker, bound=bound,
                job=prov.get("job_id"), executor=prov.get("executor"), run=prov.get("run"),
            )
            start = prov.get("start")
            if isinstance(start, int | float):
                bar = {"task": h, "lane": lane, "start": start, "end": start + float(prov.get("duration") or 0),
                       "state": "done"}
                _add_bar(runs, prov.get("run"), bar)
        log_path, inline = prov.get("log"), prov.get("log_text")
        if state in _BAD:
            log_path, inline = _explain_failure(entry, task, states, ws, failures, log_path), None
        elif state == "stale":
            log_path = _explain_stale(entry, task, earlier[h], ws, states, diffs, runs, places)
            inline = earlier[h][1].get("log_text")
        if not isinstance(inline, str):
            inline = None
        if state not in ("pending", "skipped") and (state == "failed" or logs_read < limits.logs):
            log = read_log(log_path, ws, task, limits.log_chars, inline=inline) if cacheable or log_path else None
            if log is not None:
                entry["log"] = log
                logs_read += state != "failed"
        elif log_path or inline is not None:
            entry["log"] = {"path": log_path or IN_RECORD, "text": None, "truncated": False}
        sweep = cacheable and state == "done" and siblings[fn] > 1
        if h in preview_ids or (sweep and loaded_rows < limits.table_rows):
            try:
                if where is None:
                    raise NotCachedError("the result is not in the workspace")
                if isinstance(where, dict):
                    value = load_inline(where, where["result_hash"], serializer=task.meta.serializer)
                else:
                    value = load_result(where, serializer=task.meta.serializer)  # checked against its manifest
            except Exception as exc:
                entry["preview"] = {"kind": "text", "data": f"cannot load the result: {exc}"}
            else:
                if h in preview_ids:
                    entry["preview"] = _preview_json(value, task, limits)
                if sweep and loaded_rows < limits.table_rows:
                    cells = scalars(value)
                    if cells is not None:
                        loaded_rows += 1
                        row = {"task": h, "args": plain_args(task, args_memo), "cells": cells}
                        tables.setdefault(fn, []).append(row)
                del value
        out_tasks.append(entry)
    return {
        "title": title,
        "generated": time.time(),
        "workspace": ws.describe(),
        "counts": _counts(states.values()),
        "tasks": out_tasks,
        "runs": ordered_runs(runs, failures),
        "tables": sweep_tables(tables),
    }


def _placement(prov: dict[str, Any], memo: dict[tuple[Any, ...], tuple[str, str, str]]) -> tuple[str, str, str]:
    """(lane, worker, bound) of a provenance record; siblings that ran in the same place share one answer."""
    key = (prov.get("host"), prov.get("where"), prov.get("pid"), prov.get("job_id"))
    hit = memo.get(key)
    if hit is None:
        hit = memo[key] = placement(prov)
    return hit


def _add_bar(runs: dict[str, dict[str, Any]], run: Any, bar: dict[str, Any]) -> None:
    run_id = str(run or "?")
    home = runs.get(run_id)
    if home is None:
        home = runs[run_id] = {"id": run_id, "bars": []}
    home["bars"].append(bar)


def _explain_failure(
    entry: dict[str, Any],
    task: Task[Any],
    states: dict[str, str],
    ws: Workspace,
    failures: list[dict[str, Any]],
    log_path: Any,
) -> Any:
    """Add the error (its own or the failed dependency's) to a failed or skipped task; return its log's path."""
    culprit = _culprit(task, states, ws)
    if culprit is None:
        return log_path
    ctask, frec = culprit
    entry["error"] = str(frec.get("error") or frec.get("status") or "failed")
    if ctask is not task:
        entry["error_of"] = ctask.hash
        return log_path
    attempt = failure_bar(task.hash, frec)
    if attempt is not None:
        failures.append(attempt)
        worker, bound = worker_of(frec)
        entry.update(duration=attempt["end"] - attempt["start"], host=frec.get("host"), worker=worker,
                     bound=bound, job=frec.get("job_id"), run=frec.get("run"))
    return frec.get("log")


def _explain_stale(
    entry: dict[str, Any],
    task: Task[Any],
    earlier: tuple[dict[str, Any] | None, dict[str, Any]],
    ws: Workspace,
    states: dict[str, str],
    diffs: dict[tuple[Any, ...], list[dict[str, Any]]],
    runs: dict[str, dict[str, Any]],
    places: dict[tuple[Any, ...], tuple[str, str, str]],
) -> Any:
    """A stale task's code diff, and its earlier version's bar (that run still belongs on its timeline); return
    the path of that run's log, the log the task shows (`earlier_versions` gives the records)."""
    rec, old = earlier
    entry["diff"] = _diff(task, ws, rec, states, diffs)
    start = old.get("start")
    if isinstance(start, int | float):
        lane = _placement(old, places)[0]
        bar = {"task": task.hash, "lane": lane, "start": start, "end": start + float(old.get("duration") or 0),
               "state": "stale"}
        _add_bar(runs, old.get("run"), bar)
    return old.get("log")


def _culprit(task: Task[Any], states: dict[str, str], ws: Workspace) -> tuple[Task[Any], dict[str, Any]] | None:
    """The failure record behind a failed or skipped task: its own, or the first failed dependency's."""
    stack, seen = [task], set()
    own: tuple[Task[Any], dict[str, Any]] | None = None
    while stack:
        t = stack.pop(0)
        if t.hash in seen:
            continue
        seen.add(t.hash)
        rec = ws.get_record("failure", t.hash) if states.get(t.hash) in _BAD else None
        if rec is not None and states.get(t.hash) == "failed":
            return t, rec
        if rec is not None and t is task:
            own = (t, rec)  # a skipped task's own record says less than the failure that caused it
        stack.extend(d for d in t.dependencies if states.get(d.hash) in _BAD)
    return own


def _diff(
    task: Task[Any],
    ws: Workspace,
    rec: dict[str, Any] | None,
    states: dict[str, str],
    memo: dict[tuple[Any, ...], list[dict[str, Any]]],
) -> dict[str, Any]:
    """What changed in a stale task's code (``rec``: its stale ``key`` record), else its dependencies not done.

    The diff depends only on the code fingerprints before and after, so siblings of one function whose code
    changed share it: the sources are read, normalized and compared once per function, not once per task.
    """
    fp = task.fingerprint
    if rec is not None and fp is not None:
        before = (rec.get("fingerprint") or {}).get("items") or {}
        key = (
            tuple(sorted((str(n), repr(i)) for n, i in before.items())),
            tuple((i.name, i.kind, i.file, i.line, i.digest) for i in fp.items),
        )
        items = memo.get(key)
        if items is None:
            items = memo[key] = [
                {"name": c.name, "kind": c.kind, "change": c.change, "where": c.where, "lines": c.unified()}
                for c in code_changes(task, ws)
            ]
        if items:
            return {"items": items}
    # Not cacheable dependencies are as done as theirs; a cacheable one is done when its result is current.
    stale_deps = [d.hash for d in task.dependencies if d.cacheable and states.get(d.hash) != "done"]
    return {"items": [], "deps": stale_deps}


def _counts(states: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in states:
        counts[s] = counts.get(s, 0) + 1
    return counts
