"""Which units go to Dask now, and which of them share one Dask task.

A Dask task costs the scheduler, the worker and the client about a millisecond; misen's own work for a cheap
unit (lock, cache re-check, result, provenance, logs) costs a few. One Dask task per unit thus about doubles the
time of a sweep of millisecond tasks. Cheap units of one shape are therefore packed into *parcels*: one Dask
task that runs them one after the other in the same unit process. Which units are cheap is learnt during the
run, as the local executor learns it: a task function whose runs all took less than `CHEAP` seconds is cheap.

Until a function is known, only a few of its units (one per worker thread) go out alone, as probes; the others,
and the units that depend on them, wait in the client. A slow first unit of a fresh unit process teaches nothing
(its time includes importing the project): another probe follows it. A probe that
runs longer than `CHEAP` (`FIRST_CHEAP` for a fresh process's first unit) makes its function slow at once,
without waiting for its end, so units that wait for each other never wait long. Every unit of a slow function
is one Dask task, as without parcels, so long tasks keep Dask's balancing (work stealing) unit by unit.
Parcels are small enough that every worker thread gets several of them, and short: at most `PARCEL_SECONDS` of
work by the slowest run seen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from misen.executor import Plan, UnitOutcome, WorkUnit

__all__ = ["CHEAP", "FIRST_CHEAP", "PARCEL_MAX", "PARCEL_SECONDS", "Packer"]

#: A task function whose runs all took less than this many seconds is cheap: its units may share a Dask task.
CHEAP = 0.25
#: A probe that is the first unit of a fresh unit process makes its function slow after this many seconds.
FIRST_CHEAP = 2.0
#: Most units in one parcel.
PARCEL_MAX = 64
#: Most seconds of work in one parcel, by the slowest run of its function seen so far.
PARCEL_SECONDS = 1.0
#: Parcels per worker thread (at least), so that Dask can still balance the work between workers.
SPREAD = 4


class Packer:
    """Holds the units not sent yet; `take` hands out those that may go now, grouped one list per Dask task."""

    def __init__(self, plan: Plan, slots: int) -> None:
        self.plan = plan
        self.slots = max(1, slots)
        self.held: list[str] = list(plan.units)  # dependency order
        self.slowest: dict[str, float] = {}
        self.slow: set[str] = set()
        #: Probes in flight per task function: unit id -> when its start was reported (None: not yet).
        self.probes: dict[str, dict[str, float | None]] = {}
        #: Something changed since the last `take` that may let held units go.
        self.changed = True

    def started(self, unit: WorkUnit, first: bool = False) -> None:
        """The unit's start event arrived (it has run for a tick on its worker); ``first``: it is the first unit
        of a fresh unit process, whose time includes loading misen's plugins and importing the project."""
        running = self.probes.get(unit.root.name)
        if running is not None and unit.id in running:
            # A fresh process's first unit turns slow only after FIRST_CHEAP seconds: its clock is set back.
            running[unit.id] = time.time() - (CHEAP - FIRST_CHEAP if first else 0.0)

    def ended(self, unit: WorkUnit, outcome: UnitOutcome, first: bool = False) -> None:
        """Learn from a unit's outcome how long its function takes (not from a slow ``first`` unit of a fresh
        process, slow perhaps only for importing the project: another probe goes out instead)."""
        name = unit.root.name
        running = self.probes.get(name)
        if running is not None and unit.id in running:
            del running[unit.id]
            self.changed = True
        # A fresh process's first unit counts only when quick all the same.
        quick = outcome.duration is not None and outcome.duration <= CHEAP
        if outcome.status in ("done", "failed") and outcome.duration is not None and (quick or not first):
            if name not in self.slowest:
                self.changed = True
            self.slowest[name] = max(self.slowest.get(name, 0.0), outcome.duration)
            if outcome.duration > CHEAP and name not in self.slow:
                self.slow.add(name)
                self.changed = True

    def tick(self) -> None:
        """A probe that has run longer than `CHEAP` makes its function slow."""
        now = time.time()
        for name, running in self.probes.items():
            if name not in self.slow and any(t is not None and now - t > CHEAP for t in running.values()):
                self.slow.add(name)
                self.changed = True

    def take(self, has_key: Callable[[str], bool], concluded: Callable[[str], bool]) -> list[list[str]]:
        """The units that may go now, one list per Dask task, each list's dependencies in earlier lists or sent.

        ``has_key(uid)``: the unit was sent (its outcome will come from a Dask task); ``concluded(uid)``: it has
        an outcome already (skipped, or could not be sent) and is dropped.
        """
        self.changed = False
        out: list[list[str]] = []
        given: set[str] = set()
        while True:
            buckets: dict[tuple[object, str], list[str]] = {}
            keep: list[str] = []
            for uid in self.held:
                if concluded(uid):
                    continue
                unit = self.plan.units[uid]
                if not all(has_key(d) or d in given for d in unit.deps if d in self.plan.units):
                    keep.append(uid)
                    continue
                name = unit.root.name
                if name in self.slow:
                    out.append([uid])
                elif name in self.slowest:
                    buckets.setdefault((unit.resources, name), []).append(uid)
                else:
                    running = self.probes.setdefault(name, {})
                    if len(running) < self.slots:
                        running[uid] = None
                        out.append([uid])
                    else:
                        keep.append(uid)
            parcels = [p for (_, name), uids in buckets.items() for p in self._cut(uids, self.slowest[name])]
            out.extend(parcels)
            sent_now = {uid for group in out for uid in group} - given
            given |= sent_now
            self.held = keep
            if not sent_now or not keep:
                return out

    def _cut(self, uids: list[str], slowest: float) -> list[list[str]]:
        size = min(
            PARCEL_MAX,
            math.ceil(len(uids) / (self.slots * SPREAD)),
            max(1, int(PARCEL_SECONDS / max(slowest, 1e-3))),
        )
        return [uids[i : i + size] for i in range(0, len(uids), size)]
