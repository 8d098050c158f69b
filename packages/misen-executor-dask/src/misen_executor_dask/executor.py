"""`DaskExecutor`: misen work units as Dask tasks, on a local cluster, a batch system through dask-jobqueue, or
any running Dask scheduler.

Settings come from the ``[executor]`` section of ``.misen.toml`` (``type = "dask"``). Connecting to or starting
the cluster lives in `misen_executor_dask._cluster`, the run itself in `misen_executor_dask._run`, and what
runs on the workers in `misen_executor_dask._on_worker`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import attrs
from misen.errors import ConfigError
from misen.executor import Executor, ExecutorSettings, Plan, RunEvents, UnitOutcome

if TYPE_CHECKING:
    from misen.workspace import Workspace

__all__ = ["CLUSTERS", "DaskExecutor", "DaskExecutorSettings"]

#: Short names of ``cluster``: where each cluster class lives (dask-jobqueue for the batch systems).
CLUSTERS: dict[str, str] = {
    "local": "distributed.SpecCluster",
    "slurm": "dask_jobqueue.SLURMCluster",
    "pbs": "dask_jobqueue.PBSCluster",
    "sge": "dask_jobqueue.SGECluster",
    "lsf": "dask_jobqueue.LSFCluster",
    "htcondor": "dask_jobqueue.HTCondorCluster",
    "oar": "dask_jobqueue.OARCluster",
    "moab": "dask_jobqueue.MoabCluster",
}


def _count(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{attribute.name} must be a non-negative integer, got {value!r}")


def _non_negative(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{attribute.name} must be a non-negative number, got {value!r}")


def _cluster(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in CLUSTERS and "." not in value:
        names = ", ".join(CLUSTERS)
        raise ValueError(f"cluster must be one of {names} or a dotted class path (pkg.module.Class), got {value!r}")


def _adapt(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    unknown = sorted(set(value) - {"minimum", "maximum"})
    if unknown:
        raise ValueError(f"adapt takes only minimum and maximum, got {', '.join(unknown)}")
    for key, n in value.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"adapt.{key} must be a non-negative integer, got {n!r}")
    if value.get("minimum", 0) > value.get("maximum", value.get("minimum", 0)):
        raise ValueError(f"adapt.minimum ({value['minimum']}) is above adapt.maximum ({value['maximum']})")


def _resources(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    for key, n in value.items():
        if isinstance(n, bool) or not isinstance(n, int | float) or n < 0:
            raise ValueError(f"worker_resources.{key} must be a non-negative number, got {n!r}")


def _gpu_count(name: str) -> Any:
    return attrs.field(
        default=None,
        validator=_count,
        metadata={
            "help": f"cluster = \"local\" only: how many {name} GPUs the local cluster's workers share out "
            "(device indices 0..n-1, or the first n this process may see), each worker owning its own. GPUs "
            "are never detected."
        },
    )


@attrs.define(kw_only=True)
class DaskExecutorSettings(ExecutorSettings):
    """The ``[executor]`` section when ``type = "dask"``."""

    address: str | None = attrs.field(
        default=None,
        metadata={
            "help": 'Address of a running Dask scheduler to connect to ("tcp://10.0.0.5:8786"); the cluster is '
            "left running after the run. Without it, misen starts the cluster named by `cluster` and closes it "
            "after the run."
        },
    )
    cluster: str = attrs.field(
        default="local",
        validator=_cluster,
        metadata={
            "help": 'The cluster misen starts: "local" (worker processes on this machine), "slurm", "pbs", '
            '"sge", "lsf", "htcondor", "oar", "moab" (dask-jobqueue: pip install "misen[dask-jobqueue]"), or '
            "the dotted path of any Dask cluster class (dask_kubernetes.operator.KubeCluster)."
        },
    )
    cluster_options: dict[str, Any] = attrs.field(
        factory=dict,
        metadata={
            "help": "Keyword arguments of the cluster class (dask-jobqueue: cores, memory, processes, queue, "
            'walltime, account, job_extra_directives...). For cluster = "local": options of each worker '
            "(distributed.Nanny: memory_limit...)."
        },
    )
    workers: int | None = attrs.field(
        default=None,
        validator=_count,
        metadata={
            "help": "A fixed number of Dask workers to start (default for the local cluster: one per CPU core "
            "this process may use, each with its own cores; for other clusters set this or adapt)."
        },
    )
    adapt: dict[str, int] = attrs.field(
        factory=dict,
        validator=_adapt,
        metadata={
            "help": "Let the cluster grow and shrink with the work instead of a fixed count: "
            "{minimum = 0, maximum = 20} workers."
        },
    )
    worker_resources: dict[str, float] = attrs.field(
        factory=dict,
        validator=_resources,
        metadata={
            "help": 'Resources each started worker declares beyond its CPU and MEMORY ({GPU = 1} for jobs '
            'that request one GPU; names: GPU for CUDA, ROCM_GPU, XPU_GPU). A unit with gpus=n runs only '
            "on a worker declaring at least n."
        },
    )
    num_cuda_gpus: int | None = _gpu_count("CUDA")
    num_rocm_gpus: int | None = _gpu_count("ROCm")
    num_xpu_gpus: int | None = _gpu_count("Intel XPU")
    grace_period: float = attrs.field(
        default=10.0,
        validator=_non_negative,
        metadata={
            "help": "Seconds between SIGTERM and SIGKILL when a unit passes its time limit or the run is "
            "interrupted."
        },
    )
    timeout: float = attrs.field(
        default=60.0,
        validator=_non_negative,
        metadata={"help": "Seconds to wait for the scheduler at `address`, or for a started cluster to come up."},
    )

    def __attrs_post_init__(self) -> None:
        if self.address is not None and (
            self.cluster != "local" or self.cluster_options or self.workers is not None or self.adapt
        ):
            raise ConfigError(
                "[executor] address connects to a running Dask scheduler, while cluster, cluster_options, "
                "workers and adapt describe a cluster for misen to start: set one or the other"
            )
        if self.workers is not None and self.adapt:
            raise ConfigError("[executor] workers (a fixed count) and adapt (a range) exclude each other: set one")


class DaskExecutor(Executor):
    """Runs each work unit as a Dask task (cheap units several to a task); units wait for their dependencies as
    Dask dependencies.

    Each unit runs in a child process of the Dask worker, bound to the CPU cores and devices the worker hands
    it, through the same worker path as every executor; its result goes to the workspace, never through Dask.
    See the package README for the details.
    """

    PLUGIN_NAME: ClassVar[str] = "dask"
    Settings: ClassVar[type[Any]] = DaskExecutorSettings
    SNAPSHOT: ClassVar[bool] = True

    settings: DaskExecutorSettings

    def check(self, plan: Plan) -> None:
        """Refuse a unit that no worker of a cluster misen would start can hold (`misen.errors.ResourceError`).

        What a running scheduler's workers offer is known only once connected: `execute` checks it then.
        """
        from misen_executor_dask._cluster import planned_capacity
        from misen_executor_dask._run import check_units

        capacity = planned_capacity(self.settings)
        if capacity is not None:
            check_units(plan, capacity, self.describe())

    def execute(self, plan: Plan, workspace: Workspace, events: RunEvents) -> dict[str, UnitOutcome]:
        """Run the plan on the cluster; see `misen.executor.Executor.execute`.

        Ctrl-C (``KeyboardInterrupt``) cancels the run's Dask tasks, stops its running units (SIGTERM, then
        SIGKILL after ``grace_period``), reports them cancelled, closes a cluster misen started (one it connected
        to is left running) and re-raises.
        """
        from misen_executor_dask._cluster import connect
        from misen_executor_dask._run import DaskRun

        with connect(self.settings) as connection:
            return DaskRun(self, connection, plan, workspace, events).run()

    def describe(self) -> str:
        s = self.settings
        if s.address:
            return f"dask (scheduler {s.address})"
        if s.adapt:
            size = f"{s.adapt.get('minimum', 0)}-{s.adapt.get('maximum', s.adapt.get('minimum', 0))} workers"
        elif s.workers is not None:
            size = f"{s.workers} workers"
        elif s.cluster == "local":
            from misen_executor_dask._binding import usable_cpus

            size = f"{len(usable_cpus())} workers"
        else:
            size = "no workers requested"
        return f"dask ({s.cluster} cluster, {size})"
