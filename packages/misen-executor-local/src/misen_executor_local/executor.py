"""`LocalExecutor`: misen's default executor, running work units in parallel worker processes on this machine.

Settings come from the ``[executor]`` section of ``.misen.toml`` (``type = "local"``); scheduling, binding and
the worker processes live in the private modules beside this one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import attrs
from misen.errors import ResourceError
from misen.executor import Executor, ExecutorSettings, Plan, RunEvents, UnitOutcome

from misen_executor_local._machine import Machine

if TYPE_CHECKING:
    from misen.workspace import Workspace

__all__ = ["LocalExecutor", "LocalExecutorSettings"]


def _cpus(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value == "all":
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'num_cpus must be "all" or a positive integer, got {value!r}')


def _count(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{attribute.name} must be a non-negative integer, got {value!r}")


def _indices(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{attribute.name} must list non-negative integers, got {value!r}")


def _at_least_one(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{attribute.name} must be a positive integer (at least 1), got {value!r}")


def _positive(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
        raise ValueError(f"{attribute.name} must be a positive number, got {value!r}")


def _non_negative(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{attribute.name} must be a non-negative number, got {value!r}")


def _gpu_count(runtime: str, name: str) -> Any:
    return attrs.field(
        default=None,
        validator=_count,
        metadata={
            "help": f"How many {name} GPUs tasks may use (indices 0..n-1, or the first n of {runtime}_gpu_indices). "
            "GPUs are never detected: without this or the index list, tasks asking for GPUs are refused."
        },
    )


def _gpu_indices(runtime: str, name: str) -> Any:
    return attrs.field(
        factory=list,
        validator=_indices,
        metadata={"help": f"Which {name} device indices tasks may use (default: 0..num_{runtime}_gpus-1)."},
    )


@attrs.define(kw_only=True)
class LocalExecutorSettings(ExecutorSettings):
    """The ``[executor]`` section when ``type = "local"``."""

    # Typed Any for cattrs (it cannot structure int | Literal["all"]); the validator does the checking.
    num_cpus: Any = attrs.field(
        default="all",
        validator=_cpus,
        metadata={
            "help": 'How many CPU cores tasks may use, all at once: "all" (every core this process may run on) '
            "or a number (the first n of them, or of cpu_indices)."
        },
    )
    cpu_indices: list[int] = attrs.field(
        factory=list,
        validator=_indices,
        metadata={"help": "Which CPU cores tasks may use (default: every core this process may run on)."},
    )
    max_memory: float | None = attrs.field(
        default=None,
        validator=_positive,
        metadata={
            "help": "GiB of memory tasks may use, all at once (default: the machine's physical memory). A task "
            "left at the default request of 8 GiB is charged at most this much."
        },
    )
    num_cuda_gpus: int | None = _gpu_count("cuda", "CUDA")
    cuda_gpu_indices: list[int] = _gpu_indices("cuda", "CUDA")  # noqa: RUF009 (an attrs.field)
    num_rocm_gpus: int | None = _gpu_count("rocm", "ROCm")
    rocm_gpu_indices: list[int] = _gpu_indices("rocm", "ROCm")  # noqa: RUF009 (an attrs.field)
    num_xpu_gpus: int | None = _gpu_count("xpu", "Intel XPU")
    xpu_gpu_indices: list[int] = _gpu_indices("xpu", "Intel XPU")  # noqa: RUF009 (an attrs.field)
    max_workers: int | None = attrs.field(
        default=None,
        validator=_at_least_one,
        metadata={"help": "At most this many units run at once (default: one per CPU core)."},
    )
    grace_period: float = attrs.field(
        default=10.0,
        validator=_non_negative,
        metadata={
            "help": "Seconds between SIGTERM and SIGKILL when a task passes its time limit or the run is "
            "interrupted."
        },
    )


class LocalExecutor(Executor):
    """Runs work units in parallel worker processes on this machine, packed against its CPUs, memory and GPUs.

    Each unit's process is pinned to the CPU cores it was given and sees only its GPUs; worker processes are
    reused for units that share thread counts and devices. See the package README for the details.
    """

    PLUGIN_NAME: ClassVar[str] = "local"
    Settings: ClassVar[type[Any]] = LocalExecutorSettings
    SNAPSHOT: ClassVar[bool] = True

    settings: LocalExecutorSettings

    def machine(self) -> Machine:
        """What this executor may hand out (`misen.errors.ConfigError` if the settings do not fit the machine)."""
        return Machine(self.settings)

    def check(self, plan: Plan) -> None:
        """Refuse a plan holding a unit that asks for more than this executor has (`ResourceError`)."""
        machine = self.machine()
        problems = []
        for unit in plan.units.values():
            found = machine.problems(unit.resources)
            if found:
                problems.append(f"task {unit.label} asks for {'; and '.join(found)}")
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise ResourceError("; ".join(problems[:3]) + more)

    def execute(self, plan: Plan, workspace: Workspace, events: RunEvents) -> dict[str, UnitOutcome]:
        """Run the plan's units as their dependencies finish; see `misen.executor.Executor.execute`.

        Ctrl-C (``KeyboardInterrupt``) stops every worker (SIGTERM, then SIGKILL after ``grace_period``), reports
        the running units as cancelled and re-raises, as `misen.runner.run` expects.
        """
        from misen_executor_local._scheduler import Scheduler

        self.check(plan)
        return Scheduler(self, plan, workspace, events).run()

    def describe(self) -> str:
        m = self.machine()
        text = f"local ({len(m.cpus)} CPU(s)"
        for rt, gpus in m.gpus.items():
            if gpus:
                text += f", {len(gpus)} {rt} GPU(s)"
        return text + ")"
