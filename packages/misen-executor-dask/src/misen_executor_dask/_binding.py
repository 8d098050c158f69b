"""How a unit's process is bound to its CPUs and GPUs, and the Dask resource names misen's resources map to.

The variables and their meaning are the local executor's (``misen-executor-local``): the same thread-pool
variables set to the unit's CPU count, the same device variables per GPU runtime (a runtime the unit was given
no devices of is set to the empty string, so a ``gpus=0`` task sees none). That package keeps these helpers
private, so the few lines are repeated here rather than imported from another package's private module.
"""

from __future__ import annotations

import os

__all__ = [
    "CPU",
    "DEVICE_VARIABLES",
    "GPU_RESOURCES",
    "MEMORY",
    "THREAD_VARIABLES",
    "binding_env",
    "format_indices",
    "usable_cpus",
    "visible_devices",
]

#: Dask worker resource holding a worker's CPU cores.
CPU = "CPU"
#: Dask worker resource holding a worker's memory, in GiB.
MEMORY = "MEMORY"
#: Dask worker resource holding a worker's GPUs, per misen GPU runtime.
GPU_RESOURCES: dict[str, str] = {"cuda": "GPU", "rocm": "ROCM_GPU", "xpu": "XPU_GPU"}

#: Thread-pool sizes of the numeric libraries a task may load; each is set to the unit's CPU count.
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

#: Variables that select visible devices, per GPU runtime.
DEVICE_VARIABLES: dict[str, tuple[str, ...]] = {
    "cuda": ("CUDA_VISIBLE_DEVICES",),
    "rocm": ("HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"),
    "xpu": ("ZE_AFFINITY_MASK",),
}


def format_indices(indices: tuple[int, ...] | list[int]) -> str:
    """``(0, 1, 2, 5)`` → ``"0-2,5"``."""
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


def parse_indices(text: str) -> list[int] | None:
    """``"0,1,3"`` → ``[0, 1, 3]``; ``None`` when the text is not a plain list of indices."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not all(p.isdigit() for p in parts):
        return None
    return [int(p) for p in parts]


def usable_cpus() -> list[int]:
    """The CPU indices this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def visible_devices(runtime: str) -> list[int] | None:
    """The device indices this process is restricted to (its own ``CUDA_VISIBLE_DEVICES``...), if any."""
    for name in DEVICE_VARIABLES[runtime]:
        raw = os.environ.get(name)
        if raw is not None:
            found = parse_indices(raw)
            if found is not None:
                return found
    return None


def binding_env(
    ncpus: int, gpus: tuple[int, ...], gpu_runtime: str, keep: frozenset[str] = frozenset()
) -> dict[str, str]:
    """Environment variables that bind a unit's process: thread counts and visible devices.

    Thread variables named in ``keep`` (set by the project's ``.env`` files) are left to the project.
    """
    env = {name: str(ncpus) for name in THREAD_VARIABLES if name not in keep}
    for rt, names in DEVICE_VARIABLES.items():
        value = ",".join(map(str, gpus)) if (gpus and rt == gpu_runtime) else ""
        for name in names:
            env[name] = value
    return env
