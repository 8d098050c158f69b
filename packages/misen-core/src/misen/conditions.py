"""The conditions a result was computed under, recorded in its provenance so `verify` can recompute under them.

Numeric libraries give different floating-point results with different thread counts (a BLAS reduction in
another order), so a task run by the local executor (bound to its CPUs, with ``OMP_NUM_THREADS=1`` and the like)
and recomputed in a shell with every thread can disagree although the task is deterministic. The worker records
the thread variables and the number of CPUs the task could use; `misen.verify_conditions` recomputes with them.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from misen.retries import retry_provenance

if TYPE_CHECKING:
    from misen.tasks import Task

__all__ = ["THREAD_VARIABLES", "current_conditions", "is_thread_variable", "provenance_extras"]

#: Thread-pool sizes of the numeric libraries (each executor that binds tasks to CPUs sets them).
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMEXPR_MAX_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMBA_NUM_THREADS",
    "RAYON_NUM_THREADS",
    "POLARS_MAX_THREADS",
    "TF_NUM_INTRAOP_THREADS",
)


_SUFFIXES = ("_NUM_THREADS", "_MAX_THREADS")
# The same rule for the environment's names as bytes (`current_conditions` reads them so).
_SUFFIXES_B = tuple(x.encode() for x in _SUFFIXES)
_KNOWN_B = frozenset(v.encode() for v in THREAD_VARIABLES)


def is_thread_variable(name: str) -> bool:
    """A variable that sizes a thread pool (the known ones, and any ``*_NUM_THREADS``/``*_MAX_THREADS``)."""
    return name in THREAD_VARIABLES or name.endswith(_SUFFIXES)


def _cpus() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def current_conditions() -> dict[str, Any]:
    """``{"threads": {variable: value}, "cpus": n}`` of this process."""
    env = os.environ
    # Names first, as bytes where the platform keeps them so (no decoding of every name and value: that cost more
    # than the rest of a cheap task).
    # The mapping of bytes that os.environ keeps on POSIX, when it is there: iterating `os.environb` itself goes
    # through a generator, one step per variable.
    raw = getattr(env, "_data", None)
    if type(raw) is not dict or (raw and type(next(iter(raw))) is not bytes):
        raw = getattr(os, "environb", None)
    if raw is not None:
        # The names are looked for again only when the environment's names changed: the scan cost more than the
        # rest of a cheap task. Their values are read from the same bytes (a worker bound to its CPUs has a dozen).
        threads = {}
        for name, key in _thread_names(tuple(raw)):
            value = raw.get(key)
            if value is not None:
                threads[name] = os.fsdecode(value)
    else:
        threads = {k: env[k] for k in sorted(k for k in env if is_thread_variable(k))}
    return {"threads": threads, "cpus": _cpus()}


@functools.lru_cache(maxsize=4)
def _thread_names(names: tuple[bytes, ...]) -> tuple[tuple[str, bytes], ...]:
    """The thread variables among the environment's ``names`` (bytes), sorted: ``(name, name as bytes)``."""
    found = [k for k in names if k.endswith(_SUFFIXES_B) or k in _KNOWN_B]
    return tuple(sorted((os.fsdecode(k), k) for k in found))


def provenance_extras(task: Task[Any], attempts: int = 1) -> dict[str, Any]:
    """What the worker adds to a result's provenance: the conditions, and the attempts when retries are allowed."""
    return {"conditions": current_conditions(), **retry_provenance(task, attempts)}
