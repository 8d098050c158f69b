"""The process a unit runs in on a Dask worker: ``python -P -m misen_executor_dask._child``.

A Dask worker is a long-lived process shared by many units (and, on a running cluster, by many runs), so no unit
runs inside it: each runs in a child process the worker starts and keeps for units of the same shape (the same
snapshot, CPU count and devices), as the local executor does with its worker processes. The child imports the
project from the run's snapshot, has its thread-pool and device variables set before any library reads them,
is pinned to the unit's CPUs, and runs the unit through `misen.worker.execute_payload` (task lock, cache
re-check, logs captured at the file descriptors, provenance, the result written to the workspace).

Requests come on stdin and outcomes go to stdout, framed as the local executor frames them
(`misen_executor_local.unit_process`). SIGTERM
interrupts the running task the way Ctrl-C would (recorded as cancelled, lock released) and ends the process.
When the Dask worker dies (killed, out of its job's walltime), the child notices within a fraction of a second
and ends with the processes its task started, which frees the task lock for the unit's next attempt.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Any

from misen_executor_local.binding import bind_unit
from misen_executor_local.unit_process import HEADER, read_message, write_message

__all__ = ["HEADER", "main", "read_message", "write_message"]

#: How often the child checks that the Dask worker that started it is still alive (seconds).
PARENT_POLL = 0.05


def _watch_parent(parent: int) -> None:
    """End this process and its task's processes as soon as the Dask worker that started it is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        with contextlib.suppress(Exception):
            os.killpg(0, signal.SIGKILL)
        os._exit(137)

    threading.Thread(target=watch, name="misen-parent-watch", daemon=True).start()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def main() -> None:
    # Private descriptors for the protocol: the task's output is redirected at fds 1 and 2 while it runs.
    requests = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    signal.signal(signal.SIGTERM, _interrupt)
    _watch_parent(int(os.environ.get("MISEN_DASK_PARENT", os.getppid())))
    from misen.resources import AssignedResources
    from misen.session import current_session
    from misen.worker import execute_payload

    current_session().registry  # noqa: B018  (misen's plugins load here, not in the first unit's time)
    write_message(replies, {"ready": os.getpid()})  # the worker starts the first unit's clock on this
    try:
        while True:
            request = read_message(requests)
            if request is None:
                break
            assigned = bind_unit(request, AssignedResources)

            outcome = execute_payload(
                request["payload"], where=request["where"], job_id=request["job_id"], capture="fd", assigned=assigned
            )
            write_message(replies, outcome.as_dict())
    except KeyboardInterrupt:
        # Skip interpreter teardown: a task's leftover non-daemon threads must not keep the process alive.
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(143)
    except BrokenPipeError:
        os._exit(1)


if __name__ == "__main__":
    main()
