"""One run of the local executor: dispatch ready units to workers as resources free up, watch time limits,
turn dead workers into failures, skip the dependents of failed units, and stop everything on Ctrl-C."""

from __future__ import annotations

import contextlib
import functools
import pickle
import select
import selectors
import signal
import socket
import time
from typing import TYPE_CHECKING, Any

import attrs
from misen import cache
from misen.executor import Plan, RunEvents, UnitOutcome, WorkUnit
from misen.tasklog import SPOOL_VARIABLE

from misen_executor_local._ending import end_of, new_spool, spool_log, task_log, write_unit_log
from misen_executor_local._machine import DEVICE_VARIABLES, THREAD_VARIABLES, Allocation, binding_env
from misen_executor_local._pool import Busy, WorkerProcess, stop_all
from misen_executor_local._worker import HEADER

if TYPE_CHECKING:
    from misen.workspace import Workspace

    from misen_executor_local.executor import LocalExecutor

__all__ = ["Scheduler"]

_DEVICE_NAMES = frozenset(n for names in DEVICE_VARIABLES.values() for n in names)
#: Longest sleep between checks of time limits and of ``events.cancel_requested``.
_TICK = 0.25
#: Idle workers of other device sets/thread counts kept beyond ``max_workers`` before the oldest is retired.
_SPARE_WORKERS = 2
#: A task function whose runs all took less than this many seconds may be batched and queued.
_CHEAP = 0.25
#: Seconds of (estimated) work in one batch of cheap units: one message there and one reply back per batch.
_BATCH_SECONDS = 0.05
#: Most units in one batch: enough that the messages cost little per unit, few enough that the workers share.
_BATCH_MAX = 32
#: Most batches queued behind a running one: the worker starts the next the moment one ends, without waiting for
#: a round trip through this process, so dispatch here overlaps with the tasks running there.
_QUEUE_DEPTH = 1


def _memory_request(unit: WorkUnit) -> float | None:
    """The GiB a unit asked for explicitly (enforced by its worker), or ``None`` when it kept the default."""
    memory = unit.resources.memory
    return float(memory) if memory and memory != _default_memory() else None


@functools.cache
def _default_memory() -> Any:
    from misen.resources import Resources

    return Resources().memory


def _over_memory(unit: WorkUnit, outcome: UnitOutcome) -> UnitOutcome:
    """Name a memory request as the cause when a unit held to it failed for lack of memory."""
    request = _memory_request(unit)
    if request is None or outcome.status != "failed" or "MemoryError" not in (outcome.error or ""):
        return outcome
    error = f"{unit.root!r} exceeded its memory request of {request:g} GiB ({outcome.error})"
    return attrs.evolve(outcome, error=error)


def _limit(unit: WorkUnit) -> float | None:
    minutes = unit.resources.time
    return minutes * 60 if minutes is not None else None


class Scheduler:
    """Runs one plan to the end; `run` returns every unit's outcome."""

    def __init__(self, executor: LocalExecutor, plan: Plan, workspace: Workspace, events: RunEvents) -> None:
        self.settings = executor.settings
        self.machine = executor.machine()
        self.plan = plan
        self.ws = workspace
        self.events = events
        # The executor's device binding wins over device variables in the project's .env files; thread counts
        # the project set there are the project's choice.
        if _DEVICE_NAMES & set(plan.env):
            plan = attrs.evolve(plan, env={k: v for k, v in plan.env.items() if k not in _DEVICE_NAMES})
        self.payload_plan = plan
        self.keep = frozenset(plan.env) & frozenset(THREAD_VARIABLES)
        self.limit = self.settings.max_workers or len(self.machine.cpus)
        self.node = socket.gethostname()
        self.outcomes: dict[str, UnitOutcome] = {}
        self.waiting = {uid: len({d for d in u.deps if d in plan.units}) for uid, u in plan.units.items()}
        self.dependents = plan.dependents()
        self.ready = [uid for uid, n in self.waiting.items() if n == 0]
        self.workers: list[WorkerProcess] = []
        self.retired: list[WorkerProcess] = []
        self.selector = selectors.DefaultSelector()
        self.next_index = 1
        #: Longest run of each task function in this run (seconds): which units are cheap enough to queue.
        self.slowest: dict[str, float] = {}
        #: Latest run of each task function (seconds): how many of its units make a batch.
        self.latest: dict[str, float] = {}
        #: Unit logs still to write; written after dispatching, off the path from one unit to the next.
        self.logs: list[tuple[Busy, WorkUnit, UnitOutcome]] = []

    # --- the loop --------------------------------------------------------------------------------------------------

    def run(self) -> dict[str, UnitOutcome]:
        try:
            while True:
                if self.events.cancel_requested:
                    self._stop_running()
                    for uid in self.plan.units:
                        self.outcomes.setdefault(uid, UnitOutcome(status="cancelled", error="run cancelled"))
                    break
                self._dispatch()
                self._write_unit_logs()
                if not any(w.busy for w in self.workers):
                    if not self.ready:
                        break
                    # Unreachable while check() holds (an idle machine fits every unit); never spin.
                    for uid in self.ready:
                        unit = self.plan.units[uid]
                        self._conclude(
                            unit, UnitOutcome(status="failed", error="its resources never became free")
                        )
                    self.ready = []
                    continue
                self._wait()
        except KeyboardInterrupt:
            self._stop_running()
            raise
        finally:
            self._close_workers()
        return self.outcomes

    def _dispatch(self) -> None:
        if not self.ready:
            return
        left: list[str] = []
        while self.ready:
            if sum(1 for w in self.workers if w.busy) >= self.limit or not self.machine.free_cpus:
                break
            uid = self.ready.pop(0)
            unit = self.plan.units[uid]
            alloc = self.machine.try_take(unit.resources)
            if alloc is None:
                left.append(uid)
                continue
            self._start(unit, alloc)  # it may take more ready units into the same batch
        self.ready[:0] = left
        if self.ready:
            self._prefetch()

    def _start(self, unit: WorkUnit, alloc: Allocation) -> None:
        batch = self._batch(unit, 1 << 20)
        if not batch:
            self.machine.give_back(alloc)
            return
        worker = self._worker_for(alloc)
        units = [u for u, _ in batch]
        worker.busy = Busy(units, alloc, self._where(worker, alloc), [_limit(u) for u in units])
        self._send(worker, batch, alloc)
        for u in units:
            self.events.unit_started(u, worker.busy.where)

    def _cheap(self, unit: WorkUnit) -> bool:
        slowest = self.slowest.get(unit.root.name)
        return slowest is not None and slowest <= _CHEAP

    def _batch(self, first: WorkUnit | None, budget: int) -> list[tuple[WorkUnit, bytes]]:
        """``first`` (else the first ready unit) and, when its task function has been cheap in this run, the
        next ready units of the same shape and cheap functions, taken off the ready list: one message's worth
        (about ``_BATCH_SECONDS`` of work, at most ``_BATCH_MAX`` units and ``budget`` bytes)."""
        out: list[tuple[WorkUnit, bytes]] = []
        if first is None:
            first = self.plan.units[self.ready.pop(0)]
        payload = self._payload(first)
        if payload is None:
            return out
        out.append((first, payload))
        if not self._cheap(first):
            return out
        size, seconds = len(payload), self.latest[first.root.name]
        while self.ready and len(out) < _BATCH_MAX and seconds < _BATCH_SECONDS:
            unit = self.plan.units[self.ready[0]]
            if unit.resources != first.resources or not self._cheap(unit):
                break
            payload = self._payload(unit)
            self.ready.pop(0)
            if payload is None:
                continue
            if size + len(payload) > budget:
                self.ready.insert(0, unit.id)
                break
            out.append((unit, payload))
            size += len(payload)
            seconds += max(self.latest[unit.root.name], 0.001)
        return out

    def _prefetch(self) -> None:
        """Queue the next batch behind a running one of the same shape, on workers running cheap tasks.

        The worker starts it the moment the one before ends, without waiting for a round trip through this
        process, so dispatch here overlaps with the tasks running there; a queued batch inherits the running
        batch's cores and devices. Up to ``_QUEUE_DEPTH`` batches per worker (within the pipe's size), handed out
        one worker at a time so every worker gets its share. Only done behind task functions that have been
        quick in this run, since a queued unit cannot move to another worker.
        """
        for _ in range(_QUEUE_DEPTH):
            queued_any = False
            for worker in self.workers:
                if not self.ready:
                    return
                busy = worker.busy
                if busy is None or len(worker.queued) >= _QUEUE_DEPTH or busy.stopping:
                    continue
                if not all(self._cheap(u) for u in busy.units):
                    continue
                if self.plan.units[self.ready[0]].resources != busy.unit.resources:
                    continue
                # The worker reads it only after its current batch: it must fit in the pipe, or we would block.
                room = worker.pipe_size // 2 - sum(size for _, size in worker.queued)
                batch = self._batch(None, room)
                if not batch:
                    continue
                size = sum(len(p) for _, p in batch)
                if size > room:  # even the first unit does not fit now: it waits for the next round
                    self.ready.insert(0, batch[0][0].id)
                    continue
                worker.queued.append(([u for u, _ in batch], size))
                self._send(worker, batch, busy.alloc)
                queued_any = True
            if not queued_any:
                return

    def _payload(self, unit: WorkUnit) -> bytes | None:
        try:
            return self.payload_plan.payload(unit.id)
        except Exception as exc:
            error = f"could not send the unit to a worker process ({type(exc).__name__}: {exc})"
            with contextlib.suppress(Exception):
                cache.record_failure(self.ws, unit.root, status="failed", error=error, log=None)
            self._conclude(unit, UnitOutcome(status="failed", error=error))
            return None

    def _where(self, worker: WorkerProcess, alloc: Allocation) -> str:
        return f"worker {worker.index} (pid {worker.pid}), {alloc.describe()}"

    def _send(self, worker: WorkerProcess, batch: list[tuple[WorkUnit, bytes]], alloc: Allocation) -> None:
        where = self._where(worker, alloc)
        env = binding_env(alloc, self.keep)
        requests = [
            {
                "unit": unit.id,
                "payload": payload,
                "where": where,
                "cpus": alloc.cpus,
                "gpus": alloc.gpus,
                "gpu_runtime": alloc.gpu_runtime,
                "memory": alloc.memory,
                "memory_limit": _memory_request(unit),
                "env": env,
                "node": self.node,
            }
            for unit, payload in batch
        ]
        data = pickle.dumps(requests, protocol=5)
        # A worker that died before reading shows up as end of output, and is handled as a death there.
        worker.send(HEADER.pack(len(data)) + data)

    def _worker_for(self, alloc: Allocation) -> WorkerProcess:
        key = alloc.worker_key()
        for w in self.workers:
            if w.busy is None and w.key == key and not w.eof:
                return w
        idle = [w for w in self.workers if w.busy is None]
        if idle and len(self.workers) >= self.limit + _SPARE_WORKERS:
            self._retire(idle[0])
        spool = new_spool(self.ws)
        env = binding_env(alloc, self.keep) | ({SPOOL_VARIABLE: spool} if spool else {})
        worker = WorkerProcess(self.next_index, key, env, spool)
        self.next_index += 1
        self.workers.append(worker)
        self.selector.register(worker.fd, selectors.EVENT_READ, worker)
        return worker

    def _retire(self, worker: WorkerProcess) -> None:
        self._forget(worker)
        worker.close_input()
        self.retired.append(worker)

    def _forget(self, worker: WorkerProcess) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(worker.fd)
        with contextlib.suppress(ValueError):
            self.workers.remove(worker)

    def _wait(self) -> None:
        now = time.time()
        timeout = _TICK
        for w in self.workers:
            b = w.busy
            if b is None:
                continue
            if b.stopping and not b.killed:
                timeout = min(timeout, b.term_sent + self.settings.grace_period - now)
            elif b.deadline is not None and not b.stopping:
                timeout = min(timeout, b.deadline - now)
        for key, _ in self.selector.select(max(0.0, timeout)):
            worker: WorkerProcess = key.data
            for message in worker.read_available():
                self._on_message(worker, message)
            if worker.eof:
                self._on_death(worker)
        # A process the task forked may keep the worker's pipe open after the worker died: no end of output
        # arrives then, so exits are also noticed directly.
        for worker in [w for w in self.workers if w.busy is not None and w.poll() is not None]:
            while not worker.eof and select.select([worker.fd], [], [], 0)[0]:
                for message in worker.read_available():
                    self._on_message(worker, message)
            if worker in self.workers:
                self._on_death(worker)
        self._enforce_limits()

    def _on_message(self, worker: WorkerProcess, message: Any) -> None:
        busy = worker.busy
        if message[0] != "outcomes" or busy is None:
            return
        ids = {u.id: u for u in busy.units}
        items = [(uid, data) for uid, data in message[1] if uid in ids]
        if busy.stopping:
            busy.reported.update(items)  # it is being stopped: outcomes are settled when the process is gone
            return
        for uid, data in items:
            unit = ids[uid]
            outcome = _over_memory(unit, UnitOutcome.from_dict(data))
            name = unit.root.name
            self.slowest[name] = max(self.slowest.get(name, 0.0), outcome.duration)
            self.latest[name] = outcome.duration
            self._settle(busy, unit, outcome)
        queued = worker.queued.pop(0)[0] if worker.queued else None
        worker.busy = None
        if queued is None:
            self.machine.give_back(busy.alloc)
            return
        # The worker went straight on to the batch queued behind this one, on the same cores and devices.
        worker.busy = Busy(queued, busy.alloc, busy.where, [_limit(u) for u in queued])
        for unit in queued:
            self.events.unit_started(unit, busy.where)

    def _on_death(self, worker: WorkerProcess) -> None:
        self._forget(worker)
        code = worker.reap()
        if worker.queued:
            # Never started (or interrupted before they began): they run on another worker, in order.
            self.ready[:0] = [unit.id for units, _ in worker.queued for unit in units]
            worker.queued = []
        # Whatever the task left behind in the worker's process group goes with it.
        worker.signal(signal.SIGKILL)
        busy = worker.busy
        worker.busy = None
        if busy is None:
            return
        self.machine.give_back(busy.alloc)
        culprit = False  # the first unit of the batch without an end of its own is the one that was running
        for unit in busy.units:
            end = end_of(self.ws, busy, unit)
            if end is not None:
                self._settle(busy, unit, end)
            elif culprit:  # never started: it runs on another worker
                self.ready.append(unit.id)
            else:
                culprit = True
                self._settle(busy, unit, self._death_outcome(worker, busy, unit, code))

    def _death_outcome(self, worker: WorkerProcess, busy: Busy, unit: WorkUnit, code: int) -> UnitOutcome:
        """The outcome of the unit that was running when its worker died, and its failure record."""
        log = task_log(self.ws, unit, busy.start) or spool_log(self.ws, unit, worker.spool)
        if busy.stopping == "timeout":
            status = "timeout"
            error = f"passed its time limit of {unit.resources.time:g} min and was stopped (SIGTERM"
            error += f", then SIGKILL after {self.settings.grace_period:g}s)" if busy.killed else ")"
        elif busy.stopping == "cancelled":
            status, error = "cancelled", "run interrupted"
        else:
            status, error = "failed", worker.describe_exit(code)
        with contextlib.suppress(Exception):
            cache.record_failure(self.ws, unit.root, status=status, error=error, log=log)
        return UnitOutcome(status=status, error=error, log=log, duration=time.time() - busy.start, where=busy.where)

    def _enforce_limits(self) -> None:
        now = time.time()
        for w in self.workers:
            b = w.busy
            if b is None:
                continue
            if not b.stopping and b.deadline is not None and now >= b.deadline:
                b.stopping, b.term_sent = "timeout", now
                w.signal(signal.SIGTERM)
            elif b.stopping and not b.killed and now >= b.term_sent + self.settings.grace_period:
                b.killed = True
                w.signal(signal.SIGKILL)

    # --- outcomes --------------------------------------------------------------------------------------------------

    def _settle(self, busy: Busy, unit: WorkUnit, outcome: UnitOutcome) -> None:
        self._conclude(unit, outcome)
        self.logs.append((busy, unit, outcome))

    def _conclude(self, unit: WorkUnit, outcome: UnitOutcome) -> None:
        self.outcomes[unit.id] = outcome
        self.events.unit_finished(unit, outcome)
        if outcome.ok:
            for dep in self.dependents.get(unit.id, ()):
                if dep in self.waiting and dep not in self.outcomes:
                    self.waiting[dep] -= 1
                    if self.waiting[dep] == 0:
                        self.ready.append(dep)
            return
        todo = [(d, unit) for d in self.dependents.get(unit.id, ())]
        while todo:
            uid, cause = todo.pop()
            if uid in self.outcomes:
                continue
            skipped = self.plan.units[uid]
            self.outcomes[uid] = o = UnitOutcome(
                status="skipped", error=f"dependency {cause.label} did not succeed"
            )
            self.events.unit_finished(skipped, o)
            todo.extend((d, skipped) for d in self.dependents.get(uid, ()))

    def _write_unit_logs(self) -> None:
        logs, self.logs = self.logs, []
        batches: dict[int, list[tuple[Busy, WorkUnit, UnitOutcome]]] = {}
        for entry in logs:
            batches.setdefault(id(entry[0]), []).append(entry)
        for batch in batches.values():
            ended = [(unit, outcome) for _, unit, outcome in batch]
            write_unit_log(self.ws, self.plan.run_id, self.node, batch[0][0], ended)

    # --- stopping --------------------------------------------------------------------------------------------------

    def _stop_running(self) -> None:
        """Ctrl-C or a cancel request: stop every worker and report the units they were running as cancelled."""
        busy = [w for w in self.workers if w.busy is not None]
        for w in busy:
            assert w.busy is not None
            w.busy.stopping = "cancelled"
        workers = list(self.workers)
        # Outcomes already sent count: a unit that finished just before Ctrl-C is done, not cancelled.
        for w in busy:
            while not w.eof and select.select([w.fd], [], [], 0)[0]:
                for message in w.read_available():
                    self._on_message(w, message)
        for w in workers:
            self._forget(w)
            w.queued = []  # never started: the runner reports them cancelled
        stop_all(workers, self.settings.grace_period)
        for w in busy:
            b = w.busy
            assert b is not None
            w.busy = None
            self.machine.give_back(b.alloc)
            running = True  # the first unit of the batch without an end was running; the rest never started
            for unit in b.units:
                end = end_of(self.ws, b, unit)
                if end is not None and end.status in ("done", "cached"):
                    self._settle(b, unit, end)
                    continue
                if not running:
                    continue  # never started: the runner reports it cancelled
                running = False
                log = task_log(self.ws, unit, b.start) or spool_log(self.ws, unit, w.spool)
                with contextlib.suppress(Exception):
                    if not cache.is_cached(self.ws, unit.root):
                        cache.record_failure(self.ws, unit.root, status="cancelled", error="run interrupted", log=log)
                outcome = UnitOutcome(
                    status="cancelled",
                    error="run interrupted",
                    log=log,
                    duration=time.time() - b.start,
                    where=b.where,
                )
                write_unit_log(self.ws, self.plan.run_id, self.node, b, [(unit, outcome)])
                self.outcomes[unit.id] = outcome
                self.events.unit_finished(unit, outcome)
        self._write_unit_logs()

    def _close_workers(self) -> None:
        """End of the run: idle workers exit at end of input; any that do not within a second are killed."""
        workers = self.workers + self.retired
        self.workers, self.retired = [], []
        for w in workers:
            w.close_input()
        deadline = time.time() + 1.0
        while time.time() < deadline and any(w.poll() is None for w in workers):
            time.sleep(0.005)
        for w in workers:
            if w.poll() is None:
                w.signal(signal.SIGKILL)
            w.reap()
            # Processes a task started and left running end with the run (as a batch system would do).
            w.signal(signal.SIGKILL)
            w.drop_spool()
        self.selector.close()
