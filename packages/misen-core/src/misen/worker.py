"""Running one work unit in the current process: what every executor ends up calling.

`execute_payload` is the entry point for worker processes (the local executor's pool, SLURM jobs through
``python -m misen.worker run PAYLOAD``); `run_unit` does the work: take the task lock, re-check the cache, load
dependency results, check the resolved identity (early cutoff), run the tasks with their output in the task log,
store the result with its provenance, or record the failure.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import pickle
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from misen.errors import MisenError, ResultCorruptedError, TaskLockedError
from misen.executor import UnitOutcome, WorkUnit
from misen.resources import AssignedResources
from misen.tasks import (
    ASSIGNED_RESOURCES,
    ASSIGNED_RESOURCES_PER_NODE,
    WORK_DIR,
    RuntimeArgument,
    Task,
    _signature,
    substitute,
)
from misen.workspace import LockHolder, Workspace, hostname

if TYPE_CHECKING:
    from misen.environment import Activation
    from misen.executor import Plan

__all__ = ["execute_payload", "make_payload", "run_unit"]

PAYLOAD_VERSION = 1
#: Results of tasks that ran at least this many seconds are fsynced before they are published.
DURABLE_AFTER = 1.0
_attempts = itertools.count()


def make_payload(plan: Plan, unit: WorkUnit, **extra: Any) -> bytes:
    """Everything a fresh process needs to run ``unit``: snapshot, environment, workspace and the unit itself."""
    from misen.environment import activation_key

    body = {
        "v": PAYLOAD_VERSION,
        "snapshot": str(plan.snapshot) if plan.snapshot else None,
        "env": dict(plan.env),
        # Native environment of this unit (issue 19): applied by prepare_process after the environment files.
        "activation": plan.activations.get(activation_key(unit)),
        "workspace": plan.workspace_spec,
        "run_id": plan.run_id,
        "executor": plan.executor,
        "sys_path": [p for p in sys.path if p],
        "unit": pickle.dumps(unit, protocol=5),
        "extra": extra,
    }
    return pickle.dumps(body, protocol=5)


def snapshot_paths(snapshot: str | Path) -> list[str]:
    root = Path(snapshot)
    paths = [str(root)]
    if (root / "src").is_dir():
        paths.insert(0, str(root / "src"))
    return paths


def prepare_process(
    snapshot: str | None, env: dict[str, str], parent_path: list[str], activation: Activation | None = None
) -> None:
    """Make the snapshot's code win imports, apply the project's environment files and the native environment."""
    if snapshot:
        for p in reversed(snapshot_paths(snapshot)):
            if p in sys.path:
                sys.path.remove(p)
            sys.path.insert(0, p)
    for p in parent_path:
        if p not in sys.path:
            sys.path.append(p)
    os.environ.update(env)
    # Native environment (issue 19): the prefix's bin/ ahead on PATH, CONDA_PREFIX, activation variables; a
    # reused worker process drops the previous unit's activation first.
    from misen.environment import apply_activation

    apply_activation(activation)


_workspaces: dict[str, Workspace] = {}


def open_workspace(spec: dict[str, Any]) -> Workspace:
    key = repr(sorted(spec.items()))
    ws = _workspaces.get(key)
    if ws is None:
        ws = _workspaces[key] = Workspace.from_spec(spec)
    return ws


def execute_payload(
    payload: bytes,
    *,
    where: str = "",
    job_id: str | None = None,
    capture: str = "fd",
    assigned: AssignedResources | None = None,
) -> UnitOutcome:
    """Run the unit in ``payload`` (from `make_payload`) in this process and return its outcome."""
    start = time.time()
    try:
        body = pickle.loads(payload)
        prepare_process(body["snapshot"], body["env"], body.get("sys_path", []), body.get("activation"))
        workspace = open_workspace(body["workspace"])
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
    )


class _Tee(io.TextIOBase):
    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def write(self, s: str) -> int:
        for st in self.streams:
            with contextlib.suppress(Exception):
                st.write(s)
        return len(s)

    def flush(self) -> None:
        for st in self.streams:
            with contextlib.suppress(Exception):
                st.flush()


@contextlib.contextmanager
def capture_output(path: Path, mode: str) -> Iterator[Any]:
    """Send this process's output to ``path``: at the file-descriptor level (subprocesses included) or Python's.

    The directory exists already (`misen.workspace.Workspace.log_path` makes it).
    """
    with open(path, "a", buffering=1, encoding="utf-8", errors="replace") as log:
        if mode == "fd":
            sys.stdout.flush()
            sys.stderr.flush()
            saved = os.dup(1), os.dup(2)
            try:
                os.dup2(log.fileno(), 1)
                os.dup2(log.fileno(), 2)
                yield log
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])
        elif mode == "python":
            with contextlib.redirect_stdout(_Tee(log, sys.stdout)), contextlib.redirect_stderr(_Tee(log, sys.stderr)):
                yield log
        else:
            yield log


def call_task(task: Task[Any], values: dict[bytes, Any], runtime: dict[str, Any]) -> Any:
    """Call the task's function with dependencies and runtime markers replaced by their values."""
    sig = _signature(task.fn)
    args = {}
    for name, value in task.arguments.items():
        if type(value) is RuntimeArgument:
            value = runtime[value.name]
        else:
            value = substitute(value, values)
        args[name] = value
    positional = [args.pop(n) for n in sig.positional if n in args]
    if sig.var_positional and sig.var_positional in args:
        positional.extend(args.pop(sig.var_positional))
        return task.fn(*positional, **args)
    # Positional-or-keyword parameters can go by name; only positional-only ones need position.
    return task.fn(*positional, **args)


_BASE: dict[str, Any] = {}


def environment_digest() -> str:
    """A digest of the software environment: the project's lock file if any, else installed distributions."""
    if "env" not in _BASE:
        from misen.hashing import digest
        from misen.settings import project_root

        lock = project_root() / "uv.lock"
        if lock.is_file():
            _BASE["env"] = "uv.lock:" + digest(lock.read_bytes())
        else:
            from importlib import metadata

            # The .dist-info folder names carry name and version: no need to parse every METADATA file.
            dists = sorted(
                getattr(getattr(d, "_path", None), "name", "") or f"{d.metadata.get('Name', '?')}=={d.version}"
                for d in metadata.distributions()
            )
            _BASE["env"] = "dists:" + digest("\n".join(dists).encode())
    return str(_BASE["env"])


def _provenance(**fields: Any) -> dict[str, Any]:
    import platform

    import misen
    from misen.environment import active_activation

    native = active_activation()
    if native is not None:  # issue 19: the native environment's digest goes with the result
        fields = {"native_environment": native.provenance(), **fields}
    return {
        "host": hostname(),
        "pid": os.getpid(),
        "misen": misen.__version__,
        "python": platform.python_version(),
        "environment": environment_digest(),
        **fields,
    }


def _fingerprint_dict(task: Task[Any]) -> dict[str, Any] | None:
    if not task._fp_bytes:
        return None
    try:
        from misen.fingerprint import function_fingerprint

        fp = function_fingerprint(task.fn)
    except Exception:
        return None
    return fp.as_dict() if fp is not None else None


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
) -> UnitOutcome:
    """Run one unit here. Never raises for task errors: they become a ``failed`` outcome and a failure record."""
    start = time.time()
    root = unit.root
    if not root.cacheable:
        return _run_tasks(unit, workspace, start, run_id, executor, where, job_id, capture, assigned, snapshot)
    if workspace.is_cached(root):
        return UnitOutcome(status="cached", duration=time.time() - start, where=where)
    holder = LockHolder.current(run=run_id, task=root.name)
    try:
        with workspace.lock(root.hash, holder):
            # Another run may have finished this task between our check and the lock.
            if workspace.is_cached(root):
                return UnitOutcome(status="cached", duration=time.time() - start, where=where)
            return _run_tasks(unit, workspace, start, run_id, executor, where, job_id, capture, assigned, snapshot)
    except TaskLockedError as exc:
        return UnitOutcome(status="failed", error=str(exc), duration=time.time() - start, where=where)


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
    for task in unit.tasks:
        for dep in task.dependencies:
            if dep._id_bytes in in_unit or dep._id_bytes in hashes:
                continue
            rh = ws.result_hash(dep)
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
    # 2. Early cutoff: the same inputs already produced a result under another task hash.
    if root.cacheable:
        existing = ws.resolved_result(root_resolved)
        if existing is not None:
            ws.link(root, resolved=root_resolved, result=existing, fingerprint=_fingerprint_dict(root))
            return UnitOutcome(status="cached", duration=time.time() - start, where=where)
    # 3. Run.
    attempt = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{next(_attempts)}"
    log_path = ws.log_path("task", root.hash, attempt)
    values: dict[bytes, Any] = {}
    current = root
    try:
        with capture_output(log_path, capture) as log:
            print(f"[misen] {unit.label} on {hostname()} (pid {os.getpid()}) {where}".rstrip(), file=log)
            log.flush()
            for key, dep in external.items():
                try:
                    values[key] = ws.load_hash(hashes[key], serializer=dep.meta.serializer)
                except ResultCorruptedError as exc:
                    # Forget the damaged result so the next run recomputes the dependency instead of failing again.
                    ws.delete_record("task", dep.hash)
                    raise MisenError(
                        f"the stored result of dependency {dep!r} is damaged ({exc}); it was dropped and is "
                        "recomputed on the next run"
                    ) from None
            for task in unit.tasks:
                current = task
                runtime = _runtime_values(task, ws, assigned)
                try:
                    values[task._id_bytes] = call_task(task, values, runtime)
                finally:
                    if not task.cacheable and "WORK_DIR" in runtime and runtime["WORK_DIR"] is not None:
                        import shutil

                        shutil.rmtree(runtime["WORK_DIR"], ignore_errors=True)
                    if task.cacheable and runtime.get("WORK_DIR") is not None:
                        ws.sync_work_dir(task.hash, runtime["WORK_DIR"])
            value = values[root._id_bytes]
            duration = time.time() - start
            if root.cacheable:
                # A result that took a while to compute is made durable before it is published; a quick one is
                # flushed by the workspace's sync at the end of the run (losing it costs little to recompute).
                durable = duration >= DURABLE_AFTER
                result = ws.store(value, serializer=root.meta.serializer, durable=durable)
                prov = _provenance(
                    start=start,
                    duration=duration,
                    executor=executor,
                    job_id=job_id,
                    where=where,
                    run=run_id,
                    snapshot=Path(snapshot).name if snapshot else None,
                    fingerprint=root._fp_bytes.decode()[5:] or None,
                    log=str(log_path),
                )
                ws.link(
                    root,
                    resolved=root_resolved,
                    result=result,
                    provenance=prov,
                    fingerprint=_fingerprint_dict(root),
                    durable=durable,
                )
            print(f"[misen] done in {duration:.2f}s", file=log)
    except KeyboardInterrupt:
        _record(ws, root, "cancelled", "interrupted", str(log_path))
        ws.publish_log("task", root.hash, attempt, log_path, final=True)
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
        with contextlib.suppress(OSError), open(log_path, "a") as f:
            traceback.print_exception(exc, file=f)
        _record(ws, root, "failed", summary, str(log_path))
        ws.publish_log("task", root.hash, attempt, log_path, final=True)
        return UnitOutcome(status="failed", error=summary, log=str(log_path), duration=time.time() - start, where=where)
    ws.publish_log("task", root.hash, attempt, log_path, final=True)
    return UnitOutcome(status="done", log=str(log_path), duration=time.time() - start, where=where)


def _record(ws: Workspace, task: Task[Any], status: str, error: str, log: str | None) -> None:
    with contextlib.suppress(Exception):
        ws.record_failure(task, status=status, error=error, log=log)


def _runtime_values(task: Task[Any], ws: Workspace, assigned: AssignedResources | None) -> dict[str, Any]:
    runtime: dict[str, Any] = {}
    for value in task.arguments.values():
        if type(value) is Task:
            continue
        if value is WORK_DIR:
            runtime["WORK_DIR"] = ws.work_dir(task.hash, persistent=task.cacheable)
        elif value is ASSIGNED_RESOURCES or value is ASSIGNED_RESOURCES_PER_NODE:
            res = assigned or AssignedResources.from_process(task.resources.gpu_runtime)
            runtime["ASSIGNED_RESOURCES"] = res
            runtime["ASSIGNED_RESOURCES_PER_NODE"] = [res]
    return runtime


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
    for ws in _workspaces.values():  # this process may be the only one on its machine: flush before exiting
        with contextlib.suppress(Exception):
            ws.sync()
    if args.outcome:
        tmp = Path(args.outcome + ".tmp")
        tmp.write_text(json.dumps(outcome.as_dict()))
        os.replace(tmp, args.outcome)
    print(f"[misen] unit ended: {outcome.status}" + (f" ({outcome.error})" if outcome.error else ""), file=sys.stderr)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
