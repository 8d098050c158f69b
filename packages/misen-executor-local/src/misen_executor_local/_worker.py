"""The worker process: ``python -P -m misen_executor_local._worker``, started and fed by the local executor.

It reads requests from its stdin and writes replies to its stdout, each a pickle prefixed by its 8-byte length.
A request is a batch: a list of units of one shape, each with its payload (`misen.executor.Plan.payload`) and its
binding (CPU indices, devices, environment); the worker pins itself to the CPUs, sets the variables and runs the
units one after the other with `misen.worker.execute_payload`, then replies once with every outcome
(``("outcomes", [(unit id, outcome dict), ...])``). SIGTERM interrupts the running task the way Ctrl-C would
(the task is recorded as cancelled, its lock released), reports the outcomes of the batch's finished units, and
ends the process. End of input ends it too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Any

from misen_executor_local.binding import bind_unit
from misen_executor_local.unit_process import HEADER, read_message, write_message

__all__ = ["HEADER", "main", "read_message", "write_message"]

#: Names the executor's process, so a worker whose parent died ends too (see `_die_with_parent`).
PARENT_VARIABLE = "MISEN_LOCAL_EXECUTOR_PID"


def _die_with_parent() -> None:
    """Ask Linux to send us SIGTERM when the executor dies, so no worker outlives an aborted run."""
    parent = os.environ.get(PARENT_VARIABLE)
    if not sys.platform.startswith("linux") or not parent:
        return
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    if str(os.getppid()) != parent:
        # The parent died before prctl took effect.
        os._exit(1)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def _failed_outside_the_task(exc: Exception, where: str) -> Any:
    """The outcome of a unit whose task never got to run (or to finish) because of ``exc``: one line, no traceback.

    Storage errors (a full disk, a read-only workspace) already name the file and the cause; anything else is
    named by its type.
    """
    from misen.errors import MisenError
    from misen.executor import UnitOutcome

    if isinstance(exc, MisenError):
        error = str(exc)
    elif isinstance(exc, OSError):
        error = f"cannot write to the workspace at {exc.filename or '?'}: {(exc.strerror or str(exc)).lower()}"
    else:
        error = f"the worker failed outside the task ({type(exc).__name__}: {exc})"
    return UnitOutcome(status="failed", error=error.splitlines()[0] if error else type(exc).__name__, where=where)


def main() -> None:
    # The protocol gets private descriptors: the task's output is redirected at fds 1 and 2 while it runs, and
    # anything printed between units goes to the executor's stderr rather than into the protocol stream.
    requests = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    signal.signal(signal.SIGTERM, _interrupt)
    _die_with_parent()
    from misen.resources import AssignedResources
    from misen.worker import execute_payload

    from misen_executor_local._owned import become_subreaper, kill_descendants, memory_limit

    become_subreaper()  # what a task starts stays ours (even detached), so it ends with the task

    finished: list[tuple[str, dict[str, Any]]] = []  # outcomes of the current batch, not reported yet
    try:
        while True:
            batch = read_message(requests)
            if batch is None:
                break
            for request in batch:
                outcome = _run_request(request, execute_payload, AssignedResources, kill_descendants, memory_limit)
                finished.append((request["unit"], outcome.as_dict()))
            reply, finished = finished, []
            write_message(replies, ("outcomes", reply))
        # End of input: the run is over. Close the workspaces this worker opened (a remote one uploads what it
        # keeps for later, such as the S3 workspace's record pack).
        from misen.session import current_session

        current_session().close()
    except KeyboardInterrupt:
        # What finished before the signal counts; then skip interpreter teardown: a task's leftover non-daemon
        # threads must not keep the process alive.
        with contextlib.suppress(Exception):
            if finished:
                write_message(replies, ("outcomes", finished))
        with contextlib.suppress(Exception):
            kill_descendants(patience=0.5)
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(143)
    except BrokenPipeError:
        os._exit(1)


def _run_request(
    request: dict[str, Any], execute_payload: Any, assigned_type: Any, kill_descendants: Any, memory_limit: Any
) -> Any:
    """Run one unit of a batch with its binding; the outcome (a unit that fails outside its task fails alone)."""
    assigned = bind_unit(request, assigned_type)
    try:
        with memory_limit(request.get("memory_limit")):
            return execute_payload(request["payload"], where=request["where"], capture="fd", assigned=assigned)
    except Exception as exc:  # the workspace refused a write outside the task (lock, log): one line
        return _failed_outside_the_task(exc, request["where"])
    finally:
        kill_descendants()  # every process the task started ends with it


if __name__ == "__main__":
    main()
