"""What a task asks of the machine that runs it: the `Resources` record and its defaults."""

from __future__ import annotations

from typing import Any, Literal

import attrs

__all__ = ["GPU_RUNTIMES", "AssignedResources", "Resources"]

GPU_RUNTIMES = ("cuda", "rocm", "xpu")


def _positive_int(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"Resources.{attribute.name} must be a non-negative integer, got {value!r}")


def _optional_number(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"Resources.{attribute.name} must be a positive number or None, got {value!r}")


def _number(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"Resources.{attribute.name} must be a non-negative number, got {value!r}")


def _runtime(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in GPU_RUNTIMES:
        raise ValueError(f"Resources.gpu_runtime must be one of {', '.join(GPU_RUNTIMES)}; got {value!r}")


@attrs.frozen(kw_only=True)
class Resources:
    """Resources a task needs. Units: ``time`` in minutes, ``memory`` and ``gpu_memory`` in GiB.

    Defaults: 1 node, 1 CPU, 8 GiB of memory, no GPU, no time limit. Resources never enter a task's identity.
    """

    time: float | None = attrs.field(default=None, validator=_optional_number)
    nodes: int = attrs.field(default=1, validator=_positive_int)
    memory: float = attrs.field(default=8, validator=_number)
    cpus: int = attrs.field(default=1, validator=_positive_int)
    gpus: int = attrs.field(default=0, validator=_positive_int)
    gpu_memory: float | None = attrs.field(default=None, validator=_optional_number)
    gpu_runtime: Literal["cuda", "rocm", "xpu"] = attrs.field(default="cuda", validator=_runtime)

    @classmethod
    def coerce(cls, value: Resources | dict[str, Any] | None, *, where: str = "resources") -> Resources:
        """Build `Resources` from a mapping (as given to ``@meta(resources=...)``), naming unknown keys."""
        if value is None:
            return cls()
        if isinstance(value, Resources):
            return value
        if not isinstance(value, dict):
            raise TypeError(f"{where}: expected a dict or Resources, got {type(value).__name__}")
        known = {a.name for a in attrs.fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(
                f"{where}: unknown resource field(s) {', '.join(map(repr, unknown))}; "
                f"known fields are {', '.join(sorted(known))}"
            )
        try:
            return cls(**value)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class AssignedResources:
    """What a running task was actually given: the value of ``ASSIGNED_RESOURCES``.

    ``cpus`` and ``gpus`` are the index lists bound to the task process (CPU affinity; device indices of
    ``gpu_runtime`` as the machine numbers them).
    """

    cpus: tuple[int, ...] = ()
    gpus: tuple[int, ...] = ()
    gpu_runtime: str = "cuda"
    memory: float | None = None
    node: str = ""

    def __getitem__(self, key: str) -> Any:
        # Mapping-style access (``assigned["gpus"]``) for users who prefer it.
        return getattr(self, key)

    @classmethod
    def from_process(cls, runtime: str = "cuda") -> AssignedResources:
        """What this process can see: its CPU affinity and the visible devices of ``runtime``."""
        import os
        import socket

        try:
            cpus = tuple(sorted(os.sched_getaffinity(0)))
        except (AttributeError, OSError):
            cpus = tuple(range(os.cpu_count() or 1))
        var = {"cuda": "CUDA_VISIBLE_DEVICES", "rocm": "HIP_VISIBLE_DEVICES", "xpu": "ZE_AFFINITY_MASK"}[runtime]
        raw = os.environ.get(var, "")
        gpus = tuple(int(x) for x in raw.split(",") if x.strip().isdigit())
        return cls(cpus=cpus, gpus=gpus, gpu_runtime=runtime, node=socket.gethostname())
