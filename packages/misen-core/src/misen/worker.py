"""Running one work unit in the current process: what every executor ends up calling.

`execute_payload` is the entry point for worker processes (the local executor's pool, SLURM jobs through
``python -m misen.worker run PAYLOAD``); `run_unit` does the work: take the task lock, re-check the cache, load
dependency results, check the resolved identity (early cutoff), run the tasks with their output in the task log
(`misen.tasklog.TaskLog`: a file, or the provenance of a quick task that succeeded), store the result with its
provenance, or record the failure.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import pickle
import platform
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from misen import __version__, cache
from misen._installed import distribution_names
from misen.code_text import keep_code_text
from misen.conditions import provenance_extras
from misen.environment import Activation, active_activation, apply_activation
from misen.errors import MisenError, ResultCorruptedError, TaskLockedError
from misen.executor import PAYLOAD_VERSION, UnitOutcome, WorkUnit
from misen.fingerprint import function_fingerprint
from misen.identity import code_digest, digest
from misen.output import capture_output, scoped_environment, thread_output
from misen.resources import AssignedResources
from misen.retries import call_with_retries
from misen.session import Session, current_session
from misen.tasklog import SpoolLog, TaskLog, process_spool
from misen.tasks import Task, call_task, runtime_values
from misen.workspace import LockHolder, Workspace, hostname, process_id

if TYPE_CHECKING:
    from misen.executor import Plan

__all__ = [
    "call_task",
    "execute_payload",
    "make_payload",
    "run_unit",
    "scoped_environment",
    "thread_output",
    "yields_to",
]

#: Results of tasks that ran at least this many seconds are fsynced before they are published; the log of a task
#: that runs this long goes to its file while it runs (a quicker one that succeeds keeps its log in its record).
DURABLE_AFTER = 1.0
#: Seconds between looks at a lock held by another run, while waiting for it.
WAIT_POLL = 0.1


def make_payload(plan: Plan, unit: WorkUnit, **extra: Any) -> bytes:
    """Everything a fresh process needs to run ``unit`` (`misen.executor.Plan.payload`)."""
    return plan.payload(unit.id, **extra)


def snapshot_paths(snapshot: str | Path) -> list[str]:
    return list(_snapshot_paths(str(snapshot)))


@functools.lru_cache(maxsize=8)
def _snapshot_paths(snapshot: str) -> tuple[str, ...]:
    """The snapshot's import roots (``src/`` first when it has one): looked at once per snapshot, not per unit."""
    root = Path(snapshot)
    return (str(root / "src"), str(root)) if (root / "src").is_dir() else (str(root),)


def prepare_process(
    snapshot: str | None, env: dict[str, str], parent_path: list[str], activation: Activation | None = None
) -> None:
    """Make the snapshot's code win imports, apply the project's environment files and the native environment.

    A worker calls this before every unit, mostly with what it applied for the previous one: what is in place
    already is left as it is.
    """
    if snapshot:
        first = _snapshot_paths(snapshot)
        if tuple(sys.path[: len(first)]) != first:
            for p in reversed(first):
                if p in sys.path:
                    sys.path.remove(p)
                sys.path.insert(0, p)
    if parent_path:
        present = set(sys.path)
        sys.path.extend(p for p in dict.fromkeys(parent_path) if p not in present)
    environ = os.environ
    for name, value in env.items():
        if environ.get(name) != value:
            environ[name] = value
    # Native environment (issue 19): the prefix's bin/ ahead on PATH, CONDA_PREFIX, activation variables; a
    # reused worker process drops the previous unit's activation first.
    apply_activation(activation)


def execute_payload(
    payload: bytes,
    *,
    where: str = "",
    job_id: str | None = None,
    capture: str = "fd",
    assigned: AssignedResources | None = None,
    session: Session | None = None,
) -> UnitOutcome:
    """Run the unit in ``payload`` (from `misen.executor.Plan.payload`) in this process and return its outcome.

    Meant for a process that exists to run units (a local worker, a SLURM job, a Dask worker): it puts the
    snapshot first on ``sys.path`` and applies the project's environment to ``os.environ`` for good. The
    workspace is opened through ``session`` (default: the current one), so a unit run in the process that
    started the run gets the run's own workspace instance.
    """
    start = time.time()
    session = session or current_session()
    try:
        body = pickle.loads(payload)
        if body.get("v", 1) > PAYLOAD_VERSION:
            raise MisenError(f"payload version {body.get('v')} is newer than this misen understands")
        prepare_process(body["snapshot"], body["env"], body.get("sys_path", []), body.get("activation"))
        workspace = session.open_workspace(body["workspace"])
        unit: WorkUnit = pickle.loads(body["unit"])
    except Exception as exc:
        return UnitOutcome(
            status="failed",
            error=f"could not load the work unit ({type(exc).__name__}: {exc})",
            duration=time.time() - start,
            where=where,
        )
    return run_unit(
        unit,
        workspace,
        run_id=body["run_id"],
        executor=body["executor"],
        where=where,
        job_id=job_id,
        capture=capture,
        assigned=assigned,
        snapshot=body["snapshot"],
        run_started=body.get("run_started", 0.0),
        wait=body.get("wait", False),
    )


def environment_digest(session: Session | None = None) -> str:
    """A digest of the software environment: the project's lock file if any, else installed distributions."""
    root = (session or current_session()).project_root()
    return _environment_digest(str(root))


@functools.lru_cache(maxsize=8)
def _environment_digest(root: str) -> str:
    lock = Path(root) / "uv.lock"
    if lock.is_file():
        return "uv.lock:" + digest(lock.read_bytes())
    # The .dist-info folder names carry name and version: no need to parse every METADATA file, nor to ask
    # importlib.metadata where the folders' listings tell.
    dists = distribution_names()
    if dists is None:
        from importlib import metadata

        dists = sorted(
            getattr(getattr(d, "_path", None), "name", "") or f"{d.metadata.get('Name', '?')}=={d.version}"
            for d in metadata.distributions()
        )
    return "dists:" + digest("\n".join(dists).encode())


@functools.cache
def _process_fields(pid: int) -> dict[str, Any]:
    return {"host": hostname(), "pid": pid, "misen": __version__, "python": platform.python_version()}


def _provenance(**fields: Any) -> dict[str, Any]:
    native = active_activation()
    if native is not None:  # issue 19: the native environment's digest goes with the result
        fields = {"native_environment": native.provenance(), **fields}
    return {**_process_fields(process_id()), "environment": _environment_of_run(fields.get("run", "")), **fields}


def _environment_of_run(run_id: str) -> str:
    """`environment_digest`, looked up once per run in each process rather than for every result (it asks for the
    current directory); outside a run, every time."""
    if not run_id:
        return environment_digest()
    kept: dict[str, str] = current_session().memo("worker.environment_of_run", dict)
    found = kept.get(run_id)
    if found is None:
        kept.clear()  # the last run's only
        found = kept[run_id] = environment_digest()
    return found


def _fingerprint_dict(task: Task[Any]) -> dict[str, Any] | None:
    if not task._fp_bytes:
        return None
    try:
        fp = function_fingerprint(task.fn)
    except Exception:
        return None
    if fp is None:
        return None
    # One dict per fingerprint (kept as long as the fingerprint, computed once per function): every record of a
    # sweep's tasks holds the same one, and records only read it.
    known: dict[int, tuple[Any, dict[str, Any]]] = current_session().memo("worker.fingerprint_dicts", dict)
    found = known.get(id(fp))
    if found is None or found[0] is not fp:
        found = known[id(fp)] = (fp, fp.as_dict())
    return found[1]


def run_unit(
    unit: WorkUnit,
    workspace: Workspace,
    *,
    run_id: str = "",
    executor: str = "",
    where: str = "",
    job_id: str | None = None,
    capture: str = "fd",
    assigned: AssignedResources | None = None,
    snapshot: str | None = None,
    run_started: float = 0.0,
    wait: bool = False,
    plan: Plan | None = None,
) -> UnitOutcome:
    """Run one unit here. Never raises for task errors: they become a ``failed`` outcome and a failure record.
    A workspace that refuses a write outside the task (the lock or the log, on a full or read-only disk) fails the
    unit in one line too, instead of stopping the run.

    Another run may hold the task's lock. If that run started *after* this one (``run_started``; see
    `yields_to`), or ``wait`` is set (``run --wait``), this unit waits for it and then uses its result (or computes the task itself if the
    holder failed); otherwise it fails at once naming the holder. A unit holds no lock while it waits, so runs
    never wait on each other in a circle. ``plan`` (an executor running units in this process passes it) supplies
    ``run_id``, ``executor``, ``run_started`` and ``wait``.
    """
    start = time.time()
    if plan is not None:
        run_id, run_started, wait = plan.run_id, plan.started, plan.wait
        executor = executor or plan.executor
    try:
        while True:
            outcome = _run_unit(
                unit,
                workspace,
                start,
                run_id,
                executor,
                where,
                job_id,
                capture,
                assigned,
                snapshot,
                run_started,
            )
            if not isinstance(outcome, TaskLockedError):
                return outcome
            if not (wait or yields_to(outcome.holder, run_started, run_id)):
                return UnitOutcome(
                    status="failed", error=str(outcome), duration=time.time() - start, where=where
                )
            while workspace.lock_holder(unit.root.hash) is not None:
                time.sleep(WAIT_POLL)
    except MisenError as exc:
        return UnitOutcome(
            status="failed", error=str(exc).splitlines()[0], duration=time.time() - start, where=where
        )


def yields_to(holder: object, run_started: float, run_id: str) -> bool:
    """Whether a unit of the run (``run_started``, ``run_id``) waits for the lock ``holder``'s run: the earlier of
    two runs waits for the later one. Runs are ordered by start time, then by run id, so of two runs that started
    at the same instant (the clock's resolution) exactly one waits, and no two runs wait for each other."""
    if not isinstance(holder, LockHolder) or run_started <= 0 or holder.run_started <= 0:
        return False
    return (holder.run_started, holder.run) > (run_started, run_id)


def _run_unit(
    unit: WorkUnit,
    workspace: Workspace,
    start: float,
    run_id: str,
    executor: str,
    where: str,
    job_id: str | None,
    capture: str,
    assigned: AssignedResources | None,
    snapshot: str | None,
    run_started: float,
) -> UnitOutcome | TaskLockedError:
    root = unit.root
    if not root.cacheable:
        return _run_tasks(
            unit, workspace, start, run_id, executor, where, job_id, capture, assigned, snapshot
        )
    holder = LockHolder.current(run=run_id, task=root.name, run_started=run_started)
    try:
        with workspace.lock(root.hash, holder):
            # Another run may have finished this task since the run was planned: looked up under the lock only (a
            # look before it would cost every task a read, to spare the rare task done meanwhile a lock).
            if cache.is_cached(workspace, root):
                return UnitOutcome(status="cached", duration=time.time() - start, where=where)
            return _run_tasks(
                unit, workspace, start, run_id, executor, where, job_id, capture, assigned, snapshot
            )
    except TaskLockedError as exc:
        return exc  # the caller decides: wait for the holder, or fail naming it


def _run_tasks(
    unit: WorkUnit,
    ws: Workspace,
    start: float,
    run_id: str,
    executor: str,
    where: str,
    job_id: str | None,
    capture: str,
    assigned: AssignedResources | None,
    snapshot: str | None,
) -> UnitOutcome:
    root = unit.root
    in_unit = {t._id_bytes for t in unit.tasks}
    # 1. Result hashes of dependencies computed elsewhere (cached tasks), then resolved hashes of our tasks.
    hashes: dict[bytes, str] = {}
    external: dict[bytes, Task[Any]] = {}
    carried: dict[bytes, dict[str, Any]] = {}
    for task in unit.tasks:
        for dep in task.dependencies:
            if dep._id_bytes in in_unit or dep._id_bytes in hashes:
                continue
            found = cache.current(ws, dep)
            rh = found[0] if found is not None else None
            if found is not None and (inline := cache.inline_of(found[1], found[0])) is not None:
                carried[dep._id_bytes] = inline  # the dependency's small result, read with its record
            if rh is None:
                error = f"dependency {dep!r} has no result in the workspace"
                _record(ws, root, "skipped", error, None)
                return UnitOutcome(status="skipped", error=error, duration=time.time() - start, where=where)
            hashes[dep._id_bytes] = rh
            external[dep._id_bytes] = dep
    resolved: dict[bytes, str] = {}
    for task in unit.tasks:
        resolved[task._id_bytes] = r = task.resolved_hash(hashes)
        if not task.cacheable:
            hashes[task._id_bytes] = "x" + r
    root_resolved = resolved[root._id_bytes]
    # 2. Early cutoff: the same inputs already produced a result under another task hash. Only a task with a nested
    # task can have one: without, its resolved identity and its hash are digests of the same bytes, so an earlier
    # result of the same inputs is under this very task hash, which the caller has just looked up.
    if root.cacheable and root.dependencies:
        found = cache.cutoff(ws, root_resolved)
        if found is not None:
            existing, carry = found  # a small result travels in the new record too
            cache.link(
                ws,
                root,
                resolved=root_resolved,
                result=existing,
                fingerprint=_fingerprint_dict(root),
                inline=carry,
            )
            return UnitOutcome(status="cached", duration=time.time() - start, where=where)
    # 3. Run.
    attempt = _attempt_name()
    # The log stays in memory (or, for "fd" capture, in the process's spool file) unless it matters
    # (misen.tasklog); "fd" capture without a spool needs its file from the start.
    open_file = functools.partial(ws.log_path, "task", root.hash, attempt)
    spool = process_spool() if capture == "fd" else None
    log = (
        SpoolLog(open_file, spool, after=DURABLE_AFTER)
        if spool is not None
        else TaskLog(open_file, after=DURABLE_AFTER)
    )
    if capture == "fd" and spool is None:
        log.promote()
    values: dict[bytes, Any] = {}
    current = root
    try:
        with log, capture_output(log, capture):
            log.write(f"[misen] {unit.label} on {hostname()} (pid {process_id()}) {where}".rstrip() + "\n")
            log.flush()
            for key, dep in external.items():
                try:
                    values[key] = cache.load_hash(
                        ws, hashes[key], serializer=dep.meta.serializer, inline=carried.get(key)
                    )
                except ResultCorruptedError as exc:
                    # Forget the damaged result so the next run recomputes the dependency instead of failing again.
                    cache.drop_result(ws, dep)
                    raise MisenError(
                        f"the stored result of dependency {dep!r} is damaged ({exc}); it was dropped and is "
                        "recomputed on the next run"
                    ) from None
            attempts = 1
            for task in unit.tasks:
                current = task
                runtime = runtime_values(task, ws, assigned)
                try:
                    # misen.retries: @meta(retries=N) / run --retries; the attempts go into the provenance
                    values[task._id_bytes], attempts = call_with_retries(
                        task, lambda task=task, runtime=runtime: call_task(task, values, runtime)
                    )
                finally:
                    if not task.cacheable and "WORK_DIR" in runtime and runtime["WORK_DIR"] is not None:
                        shutil.rmtree(runtime["WORK_DIR"], ignore_errors=True)
                    if task.cacheable and runtime.get("WORK_DIR") is not None:
                        ws.sync_work_dir(task.hash, runtime["WORK_DIR"])
            value = values[root._id_bytes]
            duration = time.time() - start
            if root.cacheable:
                # A result that took a while to compute is made durable before it is published; a quick one is
                # flushed by the workspace's sync at the end of the run (losing it costs little to recompute).
                durable = duration >= DURABLE_AFTER
                result, inline = cache.store_small(
                    ws, value, serializer=root.meta.serializer, durable=durable
                )
                prov = _provenance(
                    start=start,
                    duration=duration,
                    executor=executor,
                    job_id=job_id,
                    where=where,
                    run=run_id,
                    snapshot=Path(snapshot).name if snapshot else None,
                    fingerprint=code_digest(root._fp_bytes),
                    # The log's file, or (a quick attempt) its text: `log_text`, in the record written anyway.
                    **log.settle(f"[misen] done in {duration:.2f}s\n"),
                    **provenance_extras(root, attempts),
                )
                cache.link(
                    ws,
                    root,
                    resolved=root_resolved,
                    result=result,
                    provenance=prov,
                    fingerprint=_fingerprint_dict(root),
                    durable=durable,
                    inline=inline,
                )
                keep_code_text(ws, root)  # the readable code behind the fingerprint, for `why` and reports
            log.write(f"[misen] done in {duration:.2f}s\n")
    except KeyboardInterrupt:
        log_path = log.keep()
        _record(ws, root, "cancelled", "interrupted", log_path)
        _publish(ws, root, attempt, log_path)
        raise
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            summary = f"task {current.name} called exit({exc.code})"
        elif isinstance(exc, MisenError):
            summary = str(exc)
        else:
            summary = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if current is not root:
                summary = f"in {current.name}: {summary}"
        log_path = log.keep("".join(traceback.format_exception(exc)))
        where_ran = {"start": start, "run": run_id, "where": where, "job_id": job_id, "host": hostname()}
        _record(ws, root, "failed", summary, log_path, **where_ran)  # the report's timeline draws it
        _publish(ws, root, attempt, log_path)
        return UnitOutcome(
            status="failed", error=summary, log=log_path, duration=time.time() - start, where=where
        )
    # A task without a record (not cacheable) keeps its log in its file; a cacheable one's is in its provenance.
    log_path = log.keep() if not root.cacheable else str(log.path) if log.path is not None else None
    _publish(ws, root, attempt, log_path)
    return UnitOutcome(status="done", log=log_path, duration=time.time() - start, where=where)


@functools.cache
def _attempt_numbers(pid: int) -> itertools.count[int]:
    return itertools.count(int.from_bytes(os.urandom(3), "big"))


def _attempt_name() -> str:
    """``<date>-<time>-<pid>-<six hex digits>``: the digits count on from a random start drawn once per process
    (a child made by fork draws its own)."""
    pid = process_id()
    number = next(_attempt_numbers(pid)) & 0xFFFFFF
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{pid}-{number:06x}"


def _publish(ws: Workspace, root: Task[Any], attempt: str, log_path: str | None) -> None:
    if log_path is not None:
        ws.publish_log("task", root.hash, attempt, Path(log_path), final=True)


def _record(ws: Workspace, task: Task[Any], status: str, error: str, log: str | None, **extra: Any) -> None:
    with contextlib.suppress(Exception):
        cache.record_failure(ws, task, status=status, error=error, log=log, **extra)


def main(argv: list[str] | None = None) -> int:
    """``python -m misen.worker run PAYLOAD [--outcome FILE] [--where TEXT] [--job-id ID]``."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m misen.worker")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one work unit from a payload file")
    run.add_argument("payload")
    run.add_argument("--outcome", help="write the outcome here as JSON")
    run.add_argument("--where", default="")
    run.add_argument("--job-id", default=None)
    args = parser.parse_args(argv)
    payload = Path(args.payload).read_bytes()
    outcome = execute_payload(payload, where=args.where, job_id=args.job_id, capture="fd")
    for ws in (
        current_session().open_workspaces()
    ):  # this process may be the only one on its machine: flush before exiting
        with contextlib.suppress(Exception):
            ws.sync()
    if args.outcome:
        tmp = Path(args.outcome + ".tmp")
        tmp.write_text(json.dumps(outcome.as_dict()))
        os.replace(tmp, args.outcome)
    print(
        f"[misen] unit ended: {outcome.status}" + (f" ({outcome.error})" if outcome.error else ""),
        file=sys.stderr,
    )
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
