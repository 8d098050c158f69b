"""One run on Dask, seen from the process that runs the experiment: send the units as Dask tasks with their
dependencies (alone, or cheap ones packed in parcels: `misen_executor_dask._parcels`), follow starts and ends,
skip the dependents of failed units, and stop everything on Ctrl-C."""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import re
import time
import warnings
from typing import TYPE_CHECKING, Any

import attrs
from misen import cache
from misen.errors import ResourceError
from misen.executor import Plan, RunEvents, UnitOutcome, WorkUnit
from misen.resources import Resources
from misen.tasklog import task_logs

from misen_executor_dask._binding import CPU, DEVICE_VARIABLES, GPU_RESOURCES, MEMORY, THREAD_VARIABLES
from misen_executor_dask._cluster import local_layout
from misen_executor_dask._on_worker import cancel_run, run_units
from misen_executor_dask._parcels import Packer

if TYPE_CHECKING:
    from misen.workspace import Workspace

    from misen_executor_dask._cluster import Connection
    from misen_executor_dask.executor import DaskExecutor

__all__ = ["DaskRun", "check_units", "unit_resources"]

_DEVICE_NAMES = frozenset(n for names in DEVICE_VARIABLES.values() for n in names)
#: Resources() asks for 8 GiB by default, a cluster-minded figure: only an explicit request becomes MEMORY.
_DEFAULT_MEMORY = Resources().memory
_TICK = 0.25
_attempts = itertools.count()


def unit_resources(res: Resources, declared: set[str] | None) -> dict[str, float]:
    """The Dask resources a unit asks for: ``CPU``, ``MEMORY`` (GiB, only when set explicitly) and its GPUs.

    ``declared`` is what the workers declare (``None``: unknown, no worker has connected yet). CPU and MEMORY
    are asked for only when the workers are known to declare them, so workers started without resources still
    run units (a request for a resource no worker has would wait forever); GPUs are always asked for.
    """
    out: dict[str, float] = {}
    if declared is not None and CPU in declared:
        out[CPU] = max(1, res.cpus)
    if res.memory != _DEFAULT_MEMORY and declared is not None and MEMORY in declared:
        out[MEMORY] = float(res.memory)
    if res.gpus:
        out[GPU_RESOURCES[res.gpu_runtime]] = res.gpus
    return out


def check_units(plan: Plan, capacity: dict[str, float], where: str) -> None:
    """`ResourceError` naming the units that ask for more than the largest worker has."""
    problems = []
    for unit in plan.units.values():
        res = unit.resources
        found = []
        if res.nodes > 1:
            found.append(f"nodes={res.nodes}, but a Dask task runs on one worker (nodes=1)")
        for name, amount in unit_resources(res, set(capacity)).items():
            have = capacity.get(name, 0)
            if amount > have + 1e-9:
                what = {CPU: "cpus", MEMORY: "memory"}.get(name, "gpus")
                hint = f"; declare {name} on the workers (worker_resources)" if not have else ""
                found.append(f"{what}={amount:g} ({name}), but the largest Dask worker has {have:g}{hint}")
        if found:
            problems.append(f"task {unit.label} asks for {'; and '.join(found)}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ResourceError(f"{where}: " + "; ".join(problems[:3]) + more)


def _live_capacity(client: Any) -> tuple[dict[str, float] | None, int]:
    """The largest resources of the workers connected now (``None`` when there are none yet), and how many
    threads they have in all."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    if not workers:
        return None, 0
    out: dict[str, float] = {}
    for info in workers.values():
        for name, amount in (info.get("resources") or {}).items():
            out[name] = max(out.get(name, 0), amount)
    return out, sum(int(info.get("nthreads") or 1) for info in workers.values())


def _key(units: list[WorkUnit], run_id: str) -> str:
    """The Dask key of the task running ``units`` (one unit, or a parcel named by its first unit)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", units[0].root.name)[:40]
    count = f"{len(units)}x-" if len(units) > 1 else ""
    return f"misen-{name}-{count}{units[0].id[:16]}-{run_id}"


class DaskRun:
    """Runs one plan to the end on a connected cluster; `run` returns every unit's outcome."""

    def __init__(
        self, executor: DaskExecutor, connection: Connection, plan: Plan, workspace: Workspace, events: RunEvents
    ) -> None:
        self.executor = executor
        self.settings = executor.settings
        self.client = connection.client
        self.capacity = connection.capacity
        self.plan = plan
        self.ws = workspace
        self.events = events
        # The worker's device binding wins over device variables of the project's .env files; thread counts the
        # project set there are the project's choice.
        if _DEVICE_NAMES & set(plan.env):
            plan = attrs.evolve(plan, env={k: v for k, v in plan.env.items() if k not in _DEVICE_NAMES})
        self.payload_plan = plan
        self.keep = sorted(frozenset(plan.env) & frozenset(THREAD_VARIABLES))
        self.topic = f"misen-{plan.run_id}"
        self.on = executor.describe()
        self.queue: queue.Queue[tuple[str, str, Any]] = queue.Queue()
        #: Dask key -> its future, and the units its task runs; unit id -> the key of its task.
        self.futures: dict[str, Any] = {}
        self.members: dict[str, list[str]] = {}
        self.keys: dict[str, str] = {}
        self.outcomes: dict[str, UnitOutcome] = {}
        self.started: dict[str, tuple[str, float]] = {}
        #: Units whose unit log the worker wrote.
        self.logged: set[str] = set()
        self.dependents = plan.dependents()
        self.packer = Packer(plan, 1)
        self.declared: set[str] | None = None

    # --- the run ---------------------------------------------------------------------------------------------

    def run(self) -> dict[str, UnitOutcome]:
        live, threads = _live_capacity(self.client)
        capacity = self.capacity if self.capacity is not None else live
        if capacity is not None:
            check_units(self.plan, capacity, self.on)
        self.declared = set(capacity) if capacity is not None else None
        s = self.settings
        if not threads and s.address is None and s.cluster == "local" and not s.adapt:
            threads = sum(len(slot["cpus"]) for slot in local_layout(s))  # its workers are still starting
        self.packer.slots = max(1, threads, s.workers or 0, s.adapt.get("maximum", 0) if s.adapt else 0)
        self.client.subscribe_topic(self.topic, self._on_event)
        try:
            self._send()
            self._follow()
        except KeyboardInterrupt:
            self._stop()
            raise
        finally:
            with contextlib.suppress(Exception):
                self.client.unsubscribe_topic(self.topic)
            self.futures.clear()
        return self.outcomes

    def _send(self) -> None:
        """Send what the packer lets go now, in one message to the scheduler: one task per unit or parcel, their
        dependencies as Dask dependencies (keys sent before are referred to by their futures)."""
        graph: dict[str, tuple[Any, ...]] = {}
        resources: dict[str, dict[str, float]] = {}
        members: dict[str, list[str]] = {}
        for group in self.packer.take(self.keys.__contains__, self.outcomes.__contains__):
            units = [self.plan.units[uid] for uid in group]
            requests = []
            for unit in units:
                try:
                    requests.append(self._request(unit))
                except Exception as exc:
                    error = f"could not send the unit to Dask ({type(exc).__name__}: {exc})"
                    self._record(unit, "failed", error)
                    self._conclude(unit, UnitOutcome(status="failed", error=error))
            if not requests:
                continue
            key = _key(units, self.plan.run_id)
            deps = {self.keys[d] for unit in units for d in unit.deps if d in self.keys} - {key}
            refs = [d if d in graph else self.futures.get(d, d) for d in sorted(deps)]
            graph[key] = (run_units, requests, *refs)
            resources[key] = unit_resources(units[0].resources, self.declared)
            members[key] = [r["unit"] for r in requests]
            for uid in members[key]:
                self.keys[uid] = key
        if not graph:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Sending large graph": payloads are a few KiB each
            futures = self.client.get(graph, list(graph), sync=False, resources=resources.__getitem__, retries=0)
        for key, future in zip(graph, futures, strict=True):
            future.add_done_callback(lambda f, key=key: self.queue.put(("done", key, f)))
            self.futures[key] = future
            self.members[key] = members[key]

    def _request(self, unit: WorkUnit) -> dict[str, Any]:
        res = unit.resources
        minutes = res.time
        return {
            "unit": unit.id,
            "deps": [d for d in unit.deps if d in self.plan.units],
            "title": f"unit {unit.label} ({unit.id})\ntasks: {', '.join(t.name for t in unit.tasks)}",
            "on": self.on,
            "run": self.plan.run_id,
            "topic": self.topic,
            "payload": self.payload_plan.payload(unit.id),
            "snapshot": str(self.plan.snapshot) if self.plan.snapshot else None,
            "workspace": self.plan.workspace_spec,
            "lock_key": unit.root.hash if unit.root.cacheable else None,
            "cpus": max(1, res.cpus),
            "gpus": res.gpus,
            "gpu_runtime": res.gpu_runtime,
            "memory": float(res.memory),
            "keep": self.keep,
            "time_limit": minutes * 60 if minutes is not None else None,
            "grace": self.settings.grace_period,
        }

    def _on_event(self, event: Any) -> None:
        """A unit started, or ended, on a worker (called on the client's event loop thread)."""
        _, msg = event
        if "outcomes" in msg:
            for uid, outcome in msg["outcomes"].items():
                self.queue.put(("end", uid, outcome))
        else:
            self.queue.put(("start", msg["unit"], (msg["where"], msg.get("first", False))))

    def _follow(self) -> None:
        # Dask tasks that finished before all their units' end events arrived, and since when.
        unreported: dict[str, tuple[Any, float]] = {}
        while len(self.outcomes) < len(self.plan.units):
            if self.events.cancel_requested:
                self._stop()
                for uid in self.plan.units:
                    self.outcomes.setdefault(uid, UnitOutcome(status="cancelled", error="run cancelled"))
                return
            try:
                batch = [self.queue.get(timeout=_TICK)]
            except queue.Empty:
                batch = []
            while True:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            for kind, name, data in batch:
                self._handle(kind, name, data, unreported)
            if self.packer.held:
                self.packer.tick()
                if self.packer.changed:
                    self._send()
            now = time.time()
            for key in [k for k in unreported if self._all_concluded(k)]:
                del unreported[key]
            due = [key for key, (_, since) in unreported.items() if now - since > 1.0]
            if due:
                # End events are late or lost: fetch those tasks' outcomes from the workers, in one request.
                values = self.client.gather([unreported.pop(key)[0] for key in due])
                for value in values:
                    for uid, outcome in value.items():
                        self._handle("end", uid, outcome, unreported)

    def _all_concluded(self, key: str) -> bool:
        return all(uid in self.outcomes for uid in self.members.get(key, ()))

    def _handle(self, kind: str, name: str, data: Any, unreported: dict[str, tuple[Any, float]]) -> None:
        """One message: a unit's ``start`` or ``end`` (``name`` its id), or a Dask task ``done`` (its key)."""
        if kind == "done":
            if data.status == "finished":
                unreported[name] = (data, time.time())
            else:
                for uid in self.members.get(name, ()):
                    if uid not in self.outcomes:
                        self._conclude(self.plan.units[uid], self._lost(self.plan.units[uid], data))
            return
        if name in self.outcomes:
            return
        unit = self.plan.units[name]
        if kind == "start":
            where, first = data
            if name not in self.started:
                self.started[name] = (where, time.time())
                self.events.unit_started(unit, where)
                self.packer.started(unit, first)
        else:
            if data.get("logged"):
                self.logged.add(name)
            self._conclude(unit, self._from_dict(unit, data), first=bool(data.get("first")))

    def _from_dict(self, unit: WorkUnit, data: dict[str, Any]) -> UnitOutcome:
        if data.get("status") == "skipped":
            # A dependency failed: _conclude has already skipped this unit, unless Dask got there first.
            return UnitOutcome(status="skipped", error="a dependency did not succeed")
        outcome = UnitOutcome.from_dict(data)
        if data.get("record"):
            self._record(unit, outcome.status, outcome.error or outcome.status)
        return outcome

    def _lost(self, unit: WorkUnit, future: Any) -> UnitOutcome:
        """The outcome of a unit whose Dask task ended without a value: cancelled, or an error of Dask's."""
        if future.status == "cancelled":
            return UnitOutcome(status="cancelled", error="its Dask task was cancelled")
        exc = future.exception()
        from distributed import KilledWorker

        if isinstance(exc, KilledWorker):
            error = f"every Dask worker that ran it died ({exc})"
        else:
            error = f"its Dask task failed ({type(exc).__name__}: {exc})"
        self._record(unit, "failed", error)
        return UnitOutcome(status="failed", error=error)

    def _conclude(self, unit: WorkUnit, outcome: UnitOutcome, first: bool = False) -> None:
        if outcome.where and unit.id not in self.started and outcome.status not in ("skipped", "cancelled"):
            # The end arrived before the start event: report both, in order.
            self.started[unit.id] = (outcome.where, time.time() - outcome.duration)
            self.events.unit_started(unit, outcome.where)
        self.outcomes[unit.id] = outcome
        self.events.unit_finished(unit, outcome)
        self.packer.ended(unit, outcome, first)
        if unit.id in self.started and unit.id not in self.logged:
            self._unit_log(unit, outcome)
        if outcome.ok:
            return
        todo = [(d, unit) for d in self.dependents.get(unit.id, ())]
        cancel = []
        while todo:
            uid, cause = todo.pop()
            if uid in self.outcomes or uid not in self.plan.units:
                continue
            skipped = self.plan.units[uid]
            self.outcomes[uid] = o = UnitOutcome(status="skipped", error=f"dependency {cause.label} did not succeed")
            self.events.unit_finished(skipped, o)
            self.packer.ended(skipped, o)
            key = self.keys.get(uid)
            if key in self.futures and self._all_concluded(key):
                cancel.append(self.futures[key])
            todo.extend((d, skipped) for d in self.dependents.get(uid, ()))
        if cancel:
            with contextlib.suppress(Exception):
                self.client.cancel(cancel)

    def _record(self, unit: WorkUnit, status: str, error: str) -> None:
        with contextlib.suppress(Exception):
            if not (unit.root.cacheable and cache.is_cached(self.ws, unit.root)):
                cache.record_failure(self.ws, unit.root, status=status, error=error, log=self._task_log(unit))

    def _task_log(self, unit: WorkUnit) -> str | None:
        """The newest task log begun after the unit started (the one the lost process was writing)."""
        since = self.started.get(unit.id, ("", time.time()))[1]
        with contextlib.suppress(Exception):
            for entry in task_logs(self.ws, unit.root):
                if entry.mtime >= since - 1.0 and entry.path is not None:  # a log kept in a record is not a lost one
                    return str(entry.path)
                break
        return None

    def _unit_log(self, unit: WorkUnit, outcome: UnitOutcome) -> None:
        """A short record of where the unit ran and how it ended (``misen logs --job``)."""
        where, start = self.started[unit.id]
        attempt = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{next(_attempts)}"
        with contextlib.suppress(Exception):
            path = self.ws.log_path("unit", unit.id, attempt)
            path.parent.mkdir(parents=True, exist_ok=True)
            lines = [
                f"unit {unit.label} ({unit.id})",
                f"tasks: {', '.join(t.name for t in unit.tasks)}",
                f"run {self.plan.run_id} on {self.on}, {outcome.where or where}",
                f"started {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(start))}",
                f"ended {outcome.status} after {outcome.duration:.2f}s" + (f": {outcome.error}" if outcome.error else ""),
            ]
            if outcome.log:
                lines.append(f"task log: {outcome.log}")
            path.write_text("\n".join(lines) + "\n")
            self.ws.publish_log("unit", unit.id, attempt, path, final=True)

    # --- stopping --------------------------------------------------------------------------------------------

    def _stop(self) -> None:
        """Ctrl-C or a cancel request: cancel the run's Dask tasks and stop its units running on the workers."""
        pending = [f for key, f in self.futures.items() if not self._all_concluded(key)]
        with contextlib.suppress(BaseException):
            self.client.cancel(pending, force=True)
        with contextlib.suppress(BaseException):
            self.client.run(cancel_run, self.plan.run_id, wait=True)
        # Units that ended meanwhile count: a unit that finished just before Ctrl-C is done, not cancelled.
        while True:
            try:
                kind, uid, data = self.queue.get(timeout=0.05)
            except queue.Empty:
                break
            if kind == "end" and uid not in self.outcomes:
                self._conclude(self.plan.units[uid], self._from_dict(self.plan.units[uid], data))
        for uid in list(self.started):
            if uid in self.outcomes:
                continue
            unit = self.plan.units[uid]
            self._record(unit, "cancelled", "run interrupted")
            outcome = UnitOutcome(status="cancelled", error="run interrupted", where=self.started[uid][0])
            self.outcomes[uid] = outcome
            self.events.unit_finished(unit, outcome)
