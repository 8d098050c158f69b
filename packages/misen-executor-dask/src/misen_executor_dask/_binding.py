"""The Dask resource names misen's resources map to; how a unit's process is bound is the local executor's.

The variables and their meaning are those of ``misen-executor-local`` (`misen_executor_local.binding`): the
same thread-pool variables set to the unit's CPU count, the same device variables per GPU runtime (a runtime the
unit was given no devices of is set to the empty string, so a ``gpus=0`` task sees none).
"""

from __future__ import annotations

from misen_executor_local.binding import (
    DEVICE_VARIABLES,
    THREAD_VARIABLES,
    binding_variables,
    format_indices,
    usable_cpus,
    visible_devices,
)

__all__ = [
    "CPU",
    "DEVICE_VARIABLES",
    "GPU_RESOURCES",
    "MEMORY",
    "THREAD_VARIABLES",
    "binding_variables",
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
