"""The slurm executor: queue a plan's whole graph as SLURM jobs at once, then wait for it (or detach).

Each work unit becomes a job (equal, independent units become one job array); the job runs
``python -m misen.worker run PAYLOAD`` from the run's snapshot. Dependencies become ``--dependency=afterok:``
with ``--kill-on-invalid-dep=yes``, so SLURM itself never starts a unit whose inputs failed. While waiting, one
batched status query per poll (with backoff) follows every job of the run; the outcome file each worker writes
is the final word, SLURM's state the fallback for jobs killed before writing one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import attrs
from misen import cache
from misen.errors import ConfigError, MisenError
from misen.executor import Executor, Plan, RunEvents, UnitOutcome, WorkUnit
from misen.workspace import Workspace

from misen_executor_slurm import _settings
from misen_executor_slurm._cli import CliBackend, JobState, SlurmError
from misen_executor_slurm._pyslurm import choose_backend
from misen_executor_slurm._runs import RunRecord
from misen_executor_slurm._scripts import JobGroup, group_units, render_script
from misen_executor_slurm._settings import Rule, Settings
from misen_executor_slurm._states import is_active, outcome_from_state, read_outcome

__all__ = ["Rule", "Settings", "SlurmExecutor"]

#: How long a job SLURM calls COMPLETED may take to show its outcome file (shared file systems lag).
OUTCOME_GRACE = 30.0


def ensure_writable(directory: Path, what: str) -> Path:
    """Create ``directory`` and prove it writable, or raise `ConfigError` saying what to change."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".misen-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"{what} {directory} is not writable ({exc.strerror or exc}); set [executor] snapshot_dir to a "
            "writable directory on a file system every node shares"
        ) from None
    return directory


def private_dir(directory: Path) -> Path:
    """Create ``directory`` (if needed) readable by its owner only (0700)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    return directory


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file only its owner can read (0600 from its creation, never wider)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


class SlurmExecutor(Executor):
    """Submits each work unit as a SLURM job (``[executor] type = "slurm"``); see the package README."""

    PLUGIN_NAME = "slurm"
    Settings = Settings
    SNAPSHOT = True
    CAN_DETACH = True

    def __init__(
        self,
        settings: _settings.Settings | None = None,
        *,
        backend: CliBackend | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__(settings, **overrides)
        self.settings: _settings.Settings
        self._backend = backend
        self._max_array: int | None = None

    @property
    def backend(self) -> CliBackend:
        """The SLURM backend (chosen on first use from the ``backend`` setting)."""
        if self._backend is None:
            self._backend = choose_backend(self.settings.backend)
        return self._backend

    def describe(self) -> str:
        where = f" (partition {self.settings.partition})" if self.settings.partition else ""
        return f"slurm{where}"

    def base_dir(self, workspace: Workspace) -> Path:
        """Where runs keep scripts, payloads, outcomes and job logs: ``snapshot_dir``, else the workspace's."""
        if self.settings.snapshot_dir is not None:
            return Path(self.settings.snapshot_dir).expanduser().absolute()
        local = workspace.local_root()
        if local is None:
            raise ConfigError(
                f"the {workspace.describe()} workspace has no local directory for job scripts and snapshots; "
                "set [executor] snapshot_dir to a directory on a file system every node shares"
            )
        return Path(local).absolute() / "slurm"

    def snapshot_root(self, workspace: Workspace) -> Path | None:
        """Snapshots go under ``snapshot_dir`` when it is set (misen's runner asks before taking one)."""
        if self.settings.snapshot_dir is None:
            return None
        return ensure_writable(self.base_dir(workspace) / "snapshots", "[executor] snapshot_dir")

    def max_array_size(self) -> int:
        """Largest array to submit: the setting, else the cluster's ``MaxArraySize``."""
        if self.settings.max_array_size is not None:
            return self.settings.max_array_size
        if self._max_array is None:
            value = self.backend.config().get("MaxArraySize", "1001")
            self._max_array = int(value) if value.isdigit() and int(value) > 0 else 1
        return self._max_array

    def check(self, plan: Plan) -> None:
        if plan.units and shutil.which("sbatch") is None:
            raise MisenError(
                "the slurm executor needs sbatch on PATH: run misen on a cluster login node "
                "(or choose another executor with --executor-type)"
            )

    def execute(self, plan: Plan, workspace: Workspace, events: RunEvents) -> dict[str, UnitOutcome]:
        return _Run(self, plan, workspace, events).execute()


class _Run:
    """One plan on SLURM: submission, then the poll loop."""

    def __init__(self, ex: SlurmExecutor, plan: Plan, ws: Workspace, events: RunEvents) -> None:
        self.ex, self.plan, self.ws, self.events = ex, plan, ws, events
        self.settings = ex.settings
        self.backend = ex.backend
        self.dir = ensure_writable(ex.base_dir(ws) / "runs" / plan.run_id, "the run directory")
        private_dir(self.dir)  # payloads carry the project's .env values: only their owner may read them
        self.outcomes: dict[str, UnitOutcome] = {}
        self.refs: dict[str, str] = {}  # unit id -> job reference
        self.logs: dict[str, Path] = {}
        self.started: set[str] = set()
        self.dependents = plan.dependents()
        self.record = RunRecord(plan.run_id, self.dir, detached=self.settings.detach)

    # --- submission -----------------------------------------------------------------------------------------

    def execute(self) -> dict[str, UnitOutcome]:
        try:
            self.submit_all()
            if self.settings.detach:
                return self.detached()
            self.wait()
        except KeyboardInterrupt:
            self.cancel_everything("interrupted (Ctrl-C)")
            raise
        finally:
            self.record.finished = not self.settings.detach
            self.record.save()
        return self.outcomes

    def submit_all(self) -> None:
        cached = set()
        for unit in self.plan.units.values():
            # The plan leaves cached work out; a result may have appeared since (another run).
            if unit.root.cacheable and cache.is_cached(self.ws, unit.root):
                cached.add(unit.id)
                self.finish(unit.id, UnitOutcome(status="cached", where="already in the workspace"))
        todo = [u for u in self.plan.units.values() if u.id not in cached]
        if not todo:
            return
        private_dir(self.dir / "units")
        private_dir(self.dir / "logs")
        for unit in todo:
            write_private(self.dir / "units" / f"{unit.id}.payload", self.plan.payload(unit.id))
        groups = group_units(todo, self.settings, self.ex.max_array_size(), dropped=cached)
        self.record.save()
        for group in groups:
            self.submit(group)

    def submit(self, group: JobGroup) -> None:
        bad = [d for d in group.deps if d in self.outcomes and not self.outcomes[d].ok]
        if bad:
            for unit in group.units:
                self.finish(unit.id, self.skip_outcome(bad[0]))
            return
        deps = sorted({self.refs[d] for d in group.deps if d in self.refs})
        log = self.dir / "logs" / (f"{group.name}_%a.log" if group.is_array else f"{group.name}.log")
        script = self.dir / f"{group.name}.sh"
        script.write_text(
            render_script(
                group, python=self.settings.python or sys.executable, run_dir=self.dir, workdir=Path.cwd(),
                job_name=self.settings.job_name, log=log, run_id=self.plan.run_id,
            )
        )  # fmt: skip
        array = None
        if group.is_array:
            array = f"0-{len(group.units) - 1}"
            if self.settings.array_throttle:
                array += f"%{self.settings.array_throttle}"
        try:
            job = self.backend.submit(script, dependency=deps, array=array)
        except SlurmError as exc:
            for unit in group.units:
                self.finish(
                    unit.id, UnitOutcome(status="failed", error=f"submission failed: {exc}", log=str(script))
                )
            return
        self.record.jobs.append(job)
        for i, unit in enumerate(group.units):
            ref = f"{job}_{i}" if group.is_array else job
            self.refs[unit.id] = ref
            self.logs[unit.id] = Path(str(log).replace("%a", str(i)))
            self.record.units[unit.id] = ref
        self.record.save()

    def detached(self) -> dict[str, UnitOutcome]:
        for uid, ref in self.refs.items():
            if uid not in self.outcomes:
                self.finish(
                    uid,
                    UnitOutcome(
                        status="queued",
                        error=f"detached: queued as slurm job {ref} (misen slurm cancel {self.plan.run_id} cancels the run)",
                        log=str(self.logs[uid]),
                        where=f"slurm job {ref}",
                    ),
                )
        return self.outcomes

    # --- waiting --------------------------------------------------------------------------------------------

    def active(self) -> dict[str, str]:
        return {uid: ref for uid, ref in self.refs.items() if uid not in self.outcomes}

    def wait(self) -> None:
        interval = self.settings.poll_interval
        missing: dict[str, int] = {}
        completed_at: dict[str, float] = {}
        last_error = ""
        while self.active():
            if self.sleep(interval):
                self.cancel_everything("cancel requested")
                return
            active = self.active()
            try:
                states = self.backend.query(list(active.values()))
            except SlurmError as exc:
                if str(exc) != last_error:
                    print(f"misen: slurm status query failed, retrying: {exc}", file=sys.stderr)
                    last_error = str(exc)
                interval = min(interval * 1.5, self.settings.max_poll_interval)
                continue
            changed = False
            for uid, ref in active.items():
                if uid in self.outcomes:
                    continue  # skipped as a dependent earlier in this cycle
                changed |= self.update(uid, ref, states.get(ref), missing, completed_at)
            interval = (
                self.settings.poll_interval
                if changed
                else min(interval * 1.5, self.settings.max_poll_interval)
            )

    def update(
        self, uid: str, ref: str, state: JobState | None, missing: dict[str, int], completed: dict[str, float]
    ) -> bool:
        if state is not None and state.state == "PENDING":
            return False
        unit = self.plan.units[uid]
        log = self.logs[uid]
        outcome = read_outcome(self.dir / "units" / f"{uid}.outcome.json", job=ref, log=log)
        if outcome is None:
            if is_active(state):
                assert state is not None
                if state.state == "RUNNING" and uid not in self.started:
                    self.start(unit, ref, state.node)
                    return True
                return False
            if state is None:
                # One miss can be a controller hiccup; a job SLURM forgot twice has vanished.
                missing[uid] = missing.get(uid, 0) + 1
                if missing[uid] < 2:
                    return False
            elif state.state == "COMPLETED":
                first = completed.setdefault(uid, time.monotonic())
                if time.monotonic() - first < OUTCOME_GRACE:
                    return False
            outcome = outcome_from_state(ref, state, log)
            if outcome.status in ("failed", "timeout", "cancelled") and unit.root.cacheable:
                # best effort: a workspace that cannot take the record (full, read-only) is the error itself
                with contextlib.suppress(MisenError, OSError):
                    cache.record_failure(
                        self.ws, unit.root, status=outcome.status, error=outcome.error or "", log=outcome.log
                    )
        if uid not in self.started:
            self.start(unit, ref, state.node if state else "")
        self.finish(uid, outcome)
        if not outcome.ok:
            self.skip_dependents(uid)
        return True

    def start(self, unit: WorkUnit, ref: str, node: str) -> None:
        self.started.add(unit.id)
        self.events.unit_started(unit, f"slurm job {ref}" + (f" on {node}" if node else ""))

    def finish(self, uid: str, outcome: UnitOutcome) -> None:
        self.outcomes[uid] = outcome
        self.events.unit_finished(self.plan.units[uid], outcome)

    def skip_outcome(self, failed_uid: str) -> UnitOutcome:
        return UnitOutcome(
            status="skipped", error=f"dependency {self.plan.units[failed_uid].label} did not succeed"
        )

    def skip_dependents(self, uid: str) -> None:
        """Dependents of a unit that did not succeed: cancel their jobs (SLURM would too) and mark them skipped."""
        todo, seen = list(self.dependents.get(uid, ())), set()
        doomed: list[str] = []
        while todo:
            dep = todo.pop()
            if dep in seen or dep in self.outcomes:
                continue
            seen.add(dep)
            doomed.append(dep)
            todo.extend(self.dependents.get(dep, ()))
        refs = [self.refs[d] for d in doomed if d in self.refs]
        if refs:
            try:
                self.backend.cancel(refs)
            except SlurmError as exc:
                print(f"misen: could not cancel dependents of a failed job: {exc}", file=sys.stderr)
        for dep in doomed:
            if dep in self.refs:
                self.finish(
                    dep,
                    attrs.evolve(
                        self.skip_outcome(uid), log=str(self.logs[dep]), where=f"slurm job {self.refs[dep]}"
                    ),
                )

    def cancel_everything(self, why: str) -> None:
        """``scancel`` every job of this run that has not ended; mark its units cancelled."""
        active = self.active()
        if active:
            try:
                self.backend.cancel(sorted(set(active.values())))
            except SlurmError as exc:
                print(f"misen: scancel failed: {exc}", file=sys.stderr)
        for uid in self.plan.units:
            if uid in self.outcomes:
                continue
            ref = self.refs.get(uid)
            outcome = UnitOutcome(
                status="cancelled",
                error=f"{why}: slurm job {ref} cancelled" if ref else f"{why}: not submitted",
                log=str(self.logs[uid]) if uid in self.logs else None,
                where=f"slurm job {ref}" if ref else "",
            )
            unit = self.plan.units[uid]
            # A submitted job may have started between two polls; record the cancellation for every submitted
            # unit (a result that did land still wins: the status of a cached task is "done").
            if ref is not None and unit.root.cacheable:
                with contextlib.suppress(MisenError, OSError):
                    cache.record_failure(
                        self.ws, unit.root, status="cancelled", error=outcome.error or "", log=outcome.log
                    )
            self.finish(uid, outcome)

    def sleep(self, seconds: float) -> bool:
        """Sleep, waking early (and returning True) when the run is asked to cancel."""
        deadline = time.monotonic() + seconds
        while True:
            if self.events.cancel_requested:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, 0.2))
