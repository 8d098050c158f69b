"""What the local machine offers the executor, and the bookkeeping of what is handed out to running units.

`Machine` is built once per run from the settings and the process's own view of the machine (CPU affinity,
physical memory); `Allocation` is one unit's share; `binding_env` is the environment a worker process gets for it.
"""

from __future__ import annotations

import os
from typing import Any

import attrs
from misen.errors import ConfigError, ResourceError
from misen.resources import GPU_RUNTIMES, Resources

from misen_executor_local.binding import (
    DEVICE_VARIABLES,
    THREAD_VARIABLES,
    binding_variables,
    format_indices,
    usable_cpus,
    visible_devices,
)

__all__ = ["DEVICE_VARIABLES", "THREAD_VARIABLES", "Allocation", "Machine", "binding_env", "format_indices"]

# Resources() asks for 8 GiB by default, a cluster-minded figure; see Machine.memory_for.
_DEFAULT_MEMORY = Resources().memory


def physical_memory_gib() -> float:
    """Total physical memory of this machine in GiB (0 when the platform does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (ValueError, OSError, AttributeError):
        return 0.0


def _pick(
    kind: str, setting: str, count: Any, indices: list[int], available: list[int] | None, where: str
) -> list[int]:
    """Resolve an ``indices`` list narrowed by a ``count`` (``"all"``/``None`` means every index)."""
    pool = list(indices) if indices else (list(available) if available is not None else [])
    if len(set(pool)) != len(pool):
        raise ConfigError(f"{where}: {kind} indices {pool} list an index twice")
    if available is not None and indices:
        missing = sorted(set(indices) - set(available))
        if missing:
            raise ConfigError(
                f"{where}: cpu_indices {missing} are not CPUs this process may use (it may use {format_indices(available)})"
            )
    if count is None or count == "all":
        return pool
    if not indices and available is None:
        return list(range(count))
    if count > len(pool):
        have = format_indices(pool) if pool else "none"
        raise ConfigError(
            f"{where}: {setting} = {count}, but only {len(pool)} {kind}(s) are available ({have})"
        )
    return pool[:count]


@attrs.frozen
class Allocation:
    """One running unit's share of the machine."""

    cpus: tuple[int, ...]
    memory: float
    gpus: tuple[int, ...] = ()
    gpu_runtime: str = "cuda"

    def worker_key(self) -> tuple[Any, ...]:
        """Units with equal keys may share a worker: same thread counts, same device set (see `binding_env`)."""
        return (len(self.cpus), self.gpu_runtime if self.gpus else "", self.gpus)

    def describe(self) -> str:
        text = f"cpus {format_indices(self.cpus)}"
        if self.gpus:
            text += f", {self.gpu_runtime} {format_indices(self.gpus)}"
        return text


class Machine:
    """The CPUs, memory and GPUs the executor may hand out, and what is free right now."""

    def __init__(self, settings: Any, where: str = "[executor]") -> None:
        self.cpus = _pick(
            "CPU", "num_cpus", settings.num_cpus, list(settings.cpu_indices), usable_cpus(), where
        )
        if not self.cpus:
            raise ConfigError(f"{where}: no CPUs to run on (num_cpus = {settings.num_cpus!r})")
        self.memory = float(settings.max_memory) if settings.max_memory is not None else physical_memory_gib()
        self.gpus: dict[str, list[int]] = {}
        for rt in GPU_RUNTIMES:
            count = getattr(settings, f"num_{rt}_gpus")
            indices = list(getattr(settings, f"{rt}_gpu_indices"))
            # Started with CUDA_VISIBLE_DEVICES=2,3 (say), "2 GPUs" means those two, not devices 0 and 1.
            visible = visible_devices(rt) if count and not indices else None
            if visible is not None and count > len(visible):
                names = "/".join(DEVICE_VARIABLES[rt])
                raise ConfigError(
                    f"{where}: num_{rt}_gpus = {count}, but this process may only use {rt} device(s) "
                    f"{format_indices(visible) or 'none'} (its {names} restricts it)"
                )
            self.gpus[rt] = (
                _pick(f"{rt} GPU", f"num_{rt}_gpus", count, indices, visible, where)
                if (count or indices)
                else []
            )
        self.free_cpus = list(self.cpus)
        self.free_memory = self.memory
        self.free_gpus = {rt: list(v) for rt, v in self.gpus.items()}

    def memory_for(self, res: Resources) -> float:
        """The memory a unit is charged. A task left at the 8 GiB default gets at most the whole machine."""
        if res.memory == _DEFAULT_MEMORY and self.memory and res.memory > self.memory:
            return self.memory
        return float(res.memory)

    def problems(self, res: Resources) -> list[str]:
        """Why a unit with these resources can never run here (empty if it can)."""
        out = []
        if res.nodes > 1:
            out.append(f"nodes={res.nodes}, but the local executor runs on one machine (nodes=1)")
        if res.cpus > len(self.cpus):
            out.append(
                f"cpus={res.cpus}, but the local executor has {len(self.cpus)} CPU(s) ({format_indices(self.cpus)})"
            )
        mem = self.memory_for(res)
        if self.memory and mem > self.memory + 1e-9:
            out.append(
                f"memory={res.memory:g} GiB, but the local executor has {self.memory:.1f} GiB (max_memory)"
            )
        if res.gpus:
            have = self.gpus[res.gpu_runtime]
            if res.gpus > len(have):
                hint = (
                    f"; declare them with num_{res.gpu_runtime}_gpus or {res.gpu_runtime}_gpu_indices in [executor]"
                    if not have
                    else ""
                )
                out.append(
                    f"gpus={res.gpus} ({res.gpu_runtime}), but the local executor has {len(have)} "
                    f"{res.gpu_runtime} GPU(s){hint}"
                )
        return out

    def check(self, label: str, res: Resources) -> None:
        problems = self.problems(res)
        if problems:
            raise ResourceError(f"task {label} asks for {'; and '.join(problems)}")

    def try_take(self, res: Resources) -> Allocation | None:
        """Reserve what ``res`` asks for, or ``None`` if it does not fit right now."""
        ncpu = max(1, res.cpus)
        mem = self.memory_for(res)
        if ncpu > len(self.free_cpus) or (self.memory and mem > self.free_memory + 1e-9):
            return None
        gpus: tuple[int, ...] = ()
        if res.gpus:
            free = self.free_gpus[res.gpu_runtime]
            if res.gpus > len(free):
                return None
            gpus = tuple(free[: res.gpus])
            del free[: res.gpus]
        cpus = tuple(self.free_cpus[:ncpu])
        del self.free_cpus[:ncpu]
        self.free_memory -= mem
        return Allocation(cpus=cpus, memory=mem, gpus=gpus, gpu_runtime=res.gpu_runtime)

    def give_back(self, alloc: Allocation) -> None:
        self.free_cpus = sorted({*self.free_cpus, *alloc.cpus})
        self.free_memory = min(self.memory, self.free_memory + alloc.memory)
        if alloc.gpus:
            free = self.free_gpus[alloc.gpu_runtime]
            free.extend(alloc.gpus)
            free.sort()


def binding_env(alloc: Allocation, keep: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
    """Environment variables that bind a process to ``alloc``: thread counts and visible devices.

    See `misen_executor_local.binding.binding_variables`, shared with the ``dask`` executor.
    """
    return binding_variables(len(alloc.cpus), alloc.gpus, alloc.gpu_runtime, keep)
