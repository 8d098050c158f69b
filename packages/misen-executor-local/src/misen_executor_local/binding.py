"""How a unit's process is bound to its CPUs and devices: the variables set for it and the CPU lists it is
given.

Public so that every executor that starts processes for units binds them the same way: the local executor for
its worker processes, the ``dask`` executor (``misen-executor-dask``) for the unit processes of its Dask workers.
A unit gets each thread-pool variable set to its CPU count, and every GPU runtime's device variables set: its own
runtime's to its devices, the others to the empty string, so a task without GPUs sees none.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from misen.conditions import THREAD_VARIABLES

__all__ = [
    "DEVICE_VARIABLES",
    "THREAD_VARIABLES",
    "bind_unit",
    "binding_variables",
    "format_indices",
    "usable_cpus",
    "visible_devices",
]

#: Variables that select visible devices, per GPU runtime.
DEVICE_VARIABLES: dict[str, tuple[str, ...]] = {
    "cuda": ("CUDA_VISIBLE_DEVICES",),
    "rocm": ("HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"),
    "xpu": ("ZE_AFFINITY_MASK",),
}


def format_indices(indices: tuple[int, ...] | list[int]) -> str:
    """``(0, 1, 2, 5)`` → ``"0-2,5"``: how CPU lists are usually written."""
    out: list[str] = []
    items = sorted(indices)
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        out.append(str(items[i]) if i == j else f"{items[i]}-{items[j]}")
        i = j + 1
    return ",".join(out)


def usable_cpus() -> list[int]:
    """The CPU indices this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def visible_devices(runtime: str) -> list[int] | None:
    """The device indices this process is already restricted to (its own ``CUDA_VISIBLE_DEVICES``...), if any."""
    for name in DEVICE_VARIABLES[runtime]:
        raw = os.environ.get(name)
        if raw is None:
            continue
        parts = [p.strip() for p in raw.split(",") if p.strip()]
        if all(p.isdigit() for p in parts):
            return [int(p) for p in parts]
    return None


def binding_variables(
    ncpus: int, gpus: tuple[int, ...], gpu_runtime: str, keep: set[str] | frozenset[str] = frozenset()
) -> dict[str, str]:
    """Environment variables that bind a unit's process to ``ncpus`` CPUs and the devices ``gpus`` of
    ``gpu_runtime``: thread counts and visible devices.

    Thread variables named in ``keep`` (set by the project's ``.env`` files) are left to the project.
    """
    env = {name: str(ncpus) for name in THREAD_VARIABLES if name not in keep}
    for rt, names in DEVICE_VARIABLES.items():
        value = ",".join(map(str, gpus)) if (gpus and rt == gpu_runtime) else ""
        for name in names:
            env[name] = value
    return env


def bind_unit(request: dict[str, Any], assigned_type: Any) -> Any:
    """In a unit process, before a unit runs: apply the binding ``request`` (its variables and its CPU cores) and
    return what the task sees as ``ASSIGNED_RESOURCES`` (an ``assigned_type``, `misen.resources.AssignedResources`).

    ``request`` holds ``env``, ``cpus``, ``gpus``, ``gpu_runtime``, ``memory`` and optionally ``node``.
    """
    env = os.environ
    for name, value in request["env"].items():
        if env.get(name) != value:  # setting a variable costs more than reading it: most stay as they were
            env[name] = value
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, request["cpus"])
    return assigned_type(
        cpus=tuple(request["cpus"]),
        gpus=tuple(request["gpus"]),
        gpu_runtime=request["gpu_runtime"],
        memory=request["memory"],
        node=request.get("node", ""),
    )
