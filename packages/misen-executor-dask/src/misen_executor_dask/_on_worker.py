"""What runs inside a Dask worker: the Dask task of one or more misen units.

`run_units` is the function the executor submits: once per unit, or once per parcel of cheap units of one
shape (see `misen_executor_dask._parcels`). The Dask scheduler only starts it where the units' resources
(``CPU``, ``MEMORY``, ``GPU``...) fit; here it picks which of the worker's CPU cores and GPU devices the units
get, hands the units one after the other to a child process bound to them (`misen_executor_dask._child`), writes
each unit's log, and returns the units' outcomes: small dicts. Results are written to the workspace by the child.

A unit's failure is an outcome, never an exception, so Dask never retries it. An exception out of `run_units`
only means the worker could not run the units at all. When the worker itself dies mid-unit, the scheduler
reruns the task elsewhere; that attempt first waits for the dead attempt's task lock to be released, and finds
the units the dead attempt finished already cached.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import select
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from misen.session import current_session

from misen_executor_dask._binding import binding_variables, format_indices
from misen_executor_dask._children import Child, WorkerState, current_state, worker_state

__all__ = ["cancel_run", "run_units"]

#: Variables naming the batch job a worker runs in, recorded as the job id in a result's provenance.
_JOB_VARIABLES = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "JOB_ID", "CONDOR_JOBID")
#: How long a rerun waits for the task lock of its previous, dead attempt (seconds).
_STALE_LOCK_WAIT = 120.0
_TICK = 0.1
#: Outcomes of a parcel's units are sent to the executor together, at most this many seconds apart.
_FLUSH = 0.1
#: Largest request that may wait in a child's input behind the running unit (well inside a pipe's 64 KiB).
_QUEUE_MAX_BYTES = 32 * 1024
_OK = ("done", "cached")
_attempts = itertools.count()


def cancel_run(run_id: str) -> int:
    """Stop this worker's units of run ``run_id`` (SIGTERM) and refuse its units not started yet.

    Called on every worker through ``Client.run`` when a run is interrupted; returns how many units it stopped.
    """
    state = current_state()
    if state is None:
        return 0
    with state.lock:
        state.cancelled.add(run_id)
        children = list(state.running.get(run_id, ()))
    for child in children:
        child.signal(signal.SIGTERM)
    return len(children)


class _Events:
    """The run's event topic on the scheduler: a unit's start at once, outcomes gathered for `_FLUSH` seconds."""

    def __init__(self, worker: Any, topic: str) -> None:
        self.worker = worker
        self.topic = topic
        self.pending: dict[str, dict[str, Any]] = {}
        self.last = time.time()

    def start(self, uid: str, where: str, first: bool) -> None:
        self.flush()
        with contextlib.suppress(Exception):
            self.worker.log_event(self.topic, {"unit": uid, "where": where, "first": first})

    def end(self, uid: str, outcome: dict[str, Any]) -> None:
        self.pending[uid] = outcome
        if time.time() - self.last >= _FLUSH:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            with contextlib.suppress(Exception):
                self.worker.log_event(self.topic, {"outcomes": self.pending})
            self.pending = {}
        self.last = time.time()


def _wait_for_dead_attempt(request: dict[str, Any]) -> None:
    """A rerun after a lost worker: wait until the lock of this run's earlier attempt is released.

    The earlier attempt's process ends with its worker (the kernel drops its lock, or the file system's lease
    expires); a holder from another run is left alone: the unit then reports it as running elsewhere.
    """
    key = request["lock_key"]
    if key is None:
        return
    ws = current_session().open_workspace(request["workspace"])
    deadline = time.time() + _STALE_LOCK_WAIT
    while time.time() < deadline:
        holder = ws.lock_holder(key)
        if holder is None or holder.run != request["run"]:
            return
        time.sleep(_TICK)


def _unit_log(request: dict[str, Any], outcome: dict[str, Any], start: float) -> None:
    """A short record of where the unit ran and how it ended (``misen logs --job``); marks the outcome logged."""
    uid = request["unit"]
    with contextlib.suppress(Exception):
        ws = current_session().open_workspace(request["workspace"])
        attempt = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{next(_attempts)}"
        path = ws.log_path("unit", uid, attempt)
        path.parent.mkdir(parents=True, exist_ok=True)
        error = outcome.get("error")
        lines = [
            request["title"],
            f"run {request['run']} on {request['on']}, {outcome.get('where', '')}",
            f"started {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(start))}",
            f"ended {outcome['status']} after {time.time() - start:.2f}s" + (f": {error}" if error else ""),
        ]
        if outcome.get("log"):
            lines.append(f"task log: {outcome['log']}")
        path.write_text("\n".join(lines) + "\n")
        ws.publish_log("unit", uid, attempt, path, final=True)
        outcome["logged"] = True


def run_units(requests: list[dict[str, Any]], *deps: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The Dask task of one unit or one parcel: run each unit in turn in a bound child process.

    ``requests`` share one shape (resources, snapshot) and are in dependency order. ``deps`` are the outcomes
    of the Dask tasks these units wait for (Dask dependencies); a unit whose dependency did not succeed is
    skipped without running. Returns each unit's outcome as a dict, and sends them as events too. An outcome
    with ``"record": True`` is one the child could not record itself (its process died, passed its time limit
    or was cancelled): the executor records it in the workspace.
    """
    from distributed import get_worker

    known: dict[str, dict[str, Any]] = {}
    for dep in deps:
        known.update(dep)
    worker = get_worker()
    state = worker_state(worker)
    first = requests[0]
    run_id, runtime = first["run"], first["gpu_runtime"]
    events = _Events(worker, first["topic"])
    outcomes: dict[str, dict[str, Any]] = {}
    cpus, gpus = state.take(first["cpus"], first["gpus"], runtime)
    ncpus = min(first["cpus"], len(cpus))
    env = binding_variables(ncpus, gpus, runtime, frozenset(first["keep"]))
    key = (first["snapshot"], ncpus, runtime if gpus else "", gpus)
    where = f"dask worker {worker.name} ({worker.address}), cpus {format_indices(cpus)}"
    if gpus:
        where += f", {runtime} {format_indices(gpus)}"
    common = {
        "job_id": next((os.environ[v] for v in _JOB_VARIABLES if os.environ.get(v)), None),
        "cpus": cpus,
        "gpus": gpus,
        "gpu_runtime": runtime,
        "env": env,
        "node": socket.gethostname(),
    }
    todo: list[dict[str, Any]] = []
    for request in requests:
        if any(known.get(d, {}).get("status") not in _OK for d in request["deps"]):
            skipped: dict[str, Any] = {"status": "skipped", "error": "a dependency did not succeed"}
            outcomes[request["unit"]] = skipped
            events.end(request["unit"], skipped)
        else:
            todo.append(request)
    child: Child | None = None
    queued = False  # todo[i] already waits in the child's input
    ahead: bytes | None = None  # todo[i] packed, but too large to wait in the input
    try:
        for i, request in enumerate(todo):
            uid = request["unit"]
            if run_id in state.cancelled:
                queued, ahead = False, None
                outcomes[uid] = {"status": "cancelled", "error": "run interrupted"}
                events.end(uid, outcomes[uid])
                continue
            if child is None:
                child, queued = state.child_for(key, env), False
                with state.lock:
                    state.running.setdefault(run_id, []).append(child)
            # The first unit of a fresh process loads misen's plugins and imports the project: its time says
            # little about its task function's (see `misen_executor_dask._parcels`).
            fresh = not child.ready
            child.wait_ready()
            here = f"{where}, pid {child.pid}"
            sent = queued or child.send(ahead or _pack(request, common, here))
            start = time.time()
            queued, ahead = False, None
            if sent and i + 1 < len(todo):
                # The next unit waits in the child's input, so the child goes straight on to it while this
                # process reports this one; only small requests, which never block the pipe.
                ahead = _pack(todo[i + 1], common, here)
                if len(ahead) <= _QUEUE_MAX_BYTES:
                    queued, ahead = child.send(ahead), None
            announce = functools.partial(events.start, uid, here, fresh)
            outcome, reusable = _supervise(child, sent, request, state, start, announce)
            outcome.setdefault("where", here)
            if fresh:
                outcome["first"] = True
            _unit_log(request, outcome, start)
            outcomes[uid] = outcome
            events.end(uid, outcome)
            if not reusable:
                _release(state, run_id, child, False)
                # A request waiting in a stopped child's input goes to the next one.
                child, queued, ahead = None, False, None
        events.flush()
        return outcomes
    finally:
        if child is not None:
            _release(state, run_id, child, True)
        state.give_back(cpus, gpus, runtime)


def _pack(request: dict[str, Any], common: dict[str, Any], where: str) -> bytes:
    _wait_for_dead_attempt(request)
    return Child.pack({**common, "payload": request["payload"], "where": where, "memory": request["memory"]})


def _release(state: WorkerState, run_id: str, child: Child, reusable: bool) -> None:
    with state.lock:
        running = state.running.get(run_id, [])
        if child in running:
            running.remove(child)
        if not running:
            state.running.pop(run_id, None)
    state.done_with(child, reusable)


def _supervise(
    child: Child,
    sent: bool,
    request: dict[str, Any],
    state: WorkerState,
    start: float,
    announce: Callable[[], None],
) -> tuple[dict[str, Any], bool]:
    """Wait for the outcome of the unit sent to ``child`` (``sent``: it could be), enforcing the time limit and
    run cancellation.

    ``announce`` (the unit's start event) is called once the unit has run for a tick without ending: a quick
    unit is reported by its end event alone, which halves the messages of a sweep of cheap tasks.
    """
    limit = request["time_limit"]
    deadline = start + limit if limit is not None else None
    grace = request["grace"]
    stopping: str | None = None
    term_sent = 0.0
    killed = False
    reported: dict[str, Any] | None = None
    ended = not sent
    announced = False
    while not ended:
        got = child.buffered()
        readable = got is not None or select.select([child.fd], [], [], _TICK)[0]
        if not readable and not announced:
            announced = True
            announce()
        if readable:
            if got is None:
                got, ended = child.read()
            if got is not None:
                if stopping is None:
                    return got, True
                reported = got
        if not ended and child.proc.poll() is not None:
            # A process the task started may hold the pipe open after the child died: read what is left.
            while child.buffer or select.select([child.fd], [], [], 0)[0]:
                got = child.buffered()
                if got is None:
                    if not select.select([child.fd], [], [], 0)[0]:
                        break
                    got, ended = child.read()
                if got is not None:
                    reported = got
                if ended:
                    break
            if reported is not None and stopping is None:
                return reported, False
            ended = True
        now = time.time()
        if stopping is None and request["run"] in state.cancelled:
            stopping, term_sent = "cancelled", now
            child.signal(signal.SIGTERM)
        elif stopping is None and deadline is not None and now >= deadline:
            stopping, term_sent = "timeout", now
            child.signal(signal.SIGTERM)
        elif stopping is not None and not killed and now >= term_sent + grace:
            killed = True
            child.signal(signal.SIGKILL)
    child.signal(signal.SIGKILL)  # what the task started goes with it
    duration = time.time() - start
    if reported is not None and reported.get("status") in _OK:
        return reported, False
    if stopping == "timeout":
        error = f"passed its time limit of {limit / 60:g} min and was stopped (SIGTERM"
        error += f", then SIGKILL after {grace:g}s)" if killed else ")"
        return {"status": "timeout", "error": error, "duration": duration, "record": True}, False
    if stopping == "cancelled":
        return {"status": "cancelled", "error": "run interrupted", "duration": duration, "record": True}, False
    return {"status": "failed", "error": child.describe_exit(), "duration": duration, "record": True}, False
