"""Run timelines for the report: one bar per executed task, from result provenance and failure records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from misen import cache

if TYPE_CHECKING:
    from misen.tasks import Task
    from misen.workspace import Workspace

__all__ = ["earlier_versions", "failure_bar", "lane_of", "ordered_runs", "placement", "worker_of"]


def worker_of(prov: dict[str, Any]) -> tuple[str, str]:
    """(worker, resources bound) from provenance or a failure record: ``worker 0 (pid 12)``, ``cpus 0-1``."""
    worker, _, bound = str(prov.get("where") or "").partition(", ")
    return worker or (f"pid {prov['pid']}" if prov.get("pid") else ""), bound


def lane_of(prov: dict[str, Any]) -> tuple[str, str]:
    """(timeline lane, resources bound): the job id, else the host and the worker that ran it."""
    lane, _, bound = placement(prov)
    return lane, bound


def placement(prov: dict[str, Any]) -> tuple[str, str, str]:
    """(timeline lane, worker, resources bound) of provenance or a failure record (see `lane_of`, `worker_of`)."""
    worker, bound = worker_of(prov)
    host = str(prov.get("host") or "")
    if prov.get("job_id"):
        return f"job {prov['job_id']}", worker, bound
    return (f"{host} · {worker}" if host and worker else host or worker or "?"), worker, bound


def failure_bar(task_hash: str, rec: dict[str, Any]) -> dict[str, Any] | None:
    """A failed attempt's timeline bar, from the failure record (which says where and when it ran)."""
    start, end = rec.get("start"), rec.get("time")
    if not isinstance(start, int | float) or not isinstance(end, int | float):
        return None
    lane, _ = lane_of(rec)
    return {"task": task_hash, "lane": lane, "start": start, "end": max(end, start), "state": "failed",
            "run": str(rec.get("run") or "")}


def earlier_versions(ws: Workspace, stale: list[Task[Any]]) -> dict[str, tuple[dict[str, Any] | None, dict[str, Any]]]:
    """For each stale task, by hash: its stale ``key`` record (`misen.cache.stale_record`) and the provenance
    of the earlier code version's result (that run stays on the timeline). The records behind the provenance
    are read in bulk (`Workspace.get_records`)."""
    keys = {t.hash: cache.stale_record(ws, t) for t in stale}
    olds = ws.get_records("task", sorted({str(r.get("task")) for r in keys.values() if r is not None}))

    def resolved_of(rec: dict[str, Any]) -> str:
        return str((olds.get(str(rec.get("task"))) or {}).get("resolved") or rec.get("resolved"))

    res = ws.get_records("resolved", sorted({resolved_of(r) for r in keys.values() if r is not None}))
    out: dict[str, tuple[dict[str, Any] | None, dict[str, Any]]] = {}
    for h, rec in keys.items():
        found = (res.get(resolved_of(rec)) or {}).get("provenance") if rec is not None else None
        out[h] = (rec, found if isinstance(found, dict) else {})
    return out


def ordered_runs(runs: dict[str, dict[str, Any]], failures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs oldest first, each with its bars (failed attempts included)."""
    ordered = []
    for run in runs.values():
        run["start"] = min(b["start"] for b in run["bars"])
        run["end"] = max(b["end"] for b in run["bars"])
        ordered.append(run)
    ordered.sort(key=lambda r: r["start"])
    by_id = {r["id"]: r for r in ordered}
    for bar in failures:
        run_id = bar.pop("run") or "?"
        home = by_id.get(run_id)
        if home is None:
            home = by_id[run_id] = {"id": run_id, "bars": [], "start": bar["start"], "end": bar["end"]}
            ordered.append(home)
        home["bars"].append(bar)
        home["start"], home["end"] = min(home["start"], bar["start"]), max(home["end"], bar["end"])
    ordered.sort(key=lambda r: r["start"])
    return ordered
