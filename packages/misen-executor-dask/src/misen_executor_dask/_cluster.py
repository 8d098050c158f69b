"""Reaching the cluster: connect to a running scheduler, or start one (local, dask-jobqueue, a dotted class),
sized by ``workers`` or ``adapt``; and what one worker offers, when misen knows it before any worker exists.

A cluster misen started is closed when the run ends (Ctrl-C included); one it connected to is left running.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

import attrs
from misen.errors import ConfigError, MisenError

from misen_executor_dask._binding import CPU, GPU_RESOURCES, MEMORY, usable_cpus, visible_devices
from misen_executor_dask._children import LAYOUT_VARIABLE
from misen_executor_dask.executor import CLUSTERS, DaskExecutorSettings

__all__ = ["Connection", "connect", "local_layout", "planned_capacity"]

_JOBQUEUE = {"slurm", "pbs", "sge", "lsf", "htcondor", "oar", "moab"}


@attrs.define
class Connection:
    """A client, the cluster misen started (``None`` when it connected to one), and one worker's resources."""

    client: Any
    cluster: Any | None
    #: The resources of the largest worker, when known from the settings (``None``: ask the live workers).
    capacity: dict[str, float] | None

    @property
    def started(self) -> bool:
        return self.cluster is not None


def _physical_memory_gib() -> float:
    import os

    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30)
    except (ValueError, OSError, AttributeError):
        return 0.0


def local_layout(settings: DaskExecutorSettings) -> list[dict[str, list[int]]]:
    """One slot per worker of the local cluster: its own CPU cores and devices.

    The cores this process may use are split evenly (a worker gets at least one; more workers than cores share
    them round-robin); declared GPUs are dealt out one by one, so every worker of ``n`` owns about ``1/n``.
    """
    cpus = usable_cpus()
    maximum = settings.adapt.get("maximum", settings.adapt.get("minimum", 0)) if settings.adapt else 0
    n = settings.workers or maximum or len(cpus)
    if n < 1:
        raise ConfigError("[executor] workers: the local cluster needs at least one worker")
    per = max(1, len(cpus) // n)
    slots: list[dict[str, list[int]]] = []
    for i in range(n):
        mine = cpus[i * per : (i + 1) * per] if (i + 1) * per <= len(cpus) else [cpus[i % len(cpus)]]
        slots.append({"cpus": mine})
    for rt in GPU_RESOURCES:
        count = getattr(settings, f"num_{rt}_gpus") or 0
        if not count:
            continue
        visible = visible_devices(rt)
        if visible is not None and count > len(visible):
            raise ConfigError(
                f"[executor] num_{rt}_gpus = {count}, but this process may only use {rt} device(s) "
                f"{','.join(map(str, visible)) or 'none'}"
            )
        devices = visible[:count] if visible is not None else list(range(count))
        for i, slot in enumerate(slots):
            slot[rt] = devices[i::n]
    return slots


def _slot_resources(slot: dict[str, list[int]], memory: float, extra: dict[str, float]) -> dict[str, float]:
    res: dict[str, float] = {CPU: len(slot["cpus"]), MEMORY: memory}
    for rt, name in GPU_RESOURCES.items():
        if slot.get(rt):
            res[name] = len(slot[rt])
    res.update(extra)
    return res


def _jobqueue_resources(settings: DaskExecutorSettings) -> dict[str, float] | None:
    """CPU and MEMORY of one jobqueue worker (``cores``/``memory`` split over ``processes``), plus extras."""
    opts = settings.cluster_options
    if "cores" not in opts:
        return None
    processes = int(opts.get("processes") or 1)
    res: dict[str, float] = {CPU: max(1, int(opts["cores"]) // processes)}
    if "memory" in opts:
        from dask.utils import parse_bytes

        res[MEMORY] = parse_bytes(str(opts["memory"])) / 2**30 / processes
    res.update(settings.worker_resources)
    return res


def planned_capacity(settings: DaskExecutorSettings) -> dict[str, float] | None:
    """The resources of the largest worker misen would start (``None`` when only the live workers can tell)."""
    if settings.address is not None:
        return None
    if settings.cluster == "local":
        slots = local_layout(settings)
        mem = _physical_memory_gib() / len(slots)
        capacities = [_slot_resources(s, mem, settings.worker_resources) for s in slots]
        return {k: max(c.get(k, 0) for c in capacities) for k in {k for c in capacities for k in c}}
    if settings.cluster in _JOBQUEUE:
        return _jobqueue_resources(settings)
    return None


def _import_keeping_sigint(module: str) -> Any:
    """Import ``module``; dask-jobqueue replaces the process's SIGINT handler with ``sys.exit`` on import, which
    would turn Ctrl-C into a SystemExit for misen (and anything else in the process): put the old one back."""
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if in_main else None
    try:
        return importlib.import_module(module)
    finally:
        if in_main and previous is not None and signal.getsignal(signal.SIGINT) is not previous:
            signal.signal(signal.SIGINT, previous)


def _class(path: str) -> Any:
    module, _, name = path.rpartition(".")
    try:
        return getattr(_import_keeping_sigint(module), name)
    except ImportError as exc:
        hint = ' (pip install "misen[dask-jobqueue]")' if module == "dask_jobqueue" else ""
        raise ConfigError(f"[executor] cluster: cannot import {module} for {path}: {exc}{hint}") from None
    except AttributeError:
        raise ConfigError(f"[executor] cluster: {module} has no {name}") from None


def _worker_class() -> Any:
    from distributed.deploy.subprocess import SubprocessWorker

    class MisenWorker(SubprocessWorker):  # type: ignore[misc]
        """A Nanny in its own ``python -m dask spec`` process, named as the cluster names it.

        A fresh process rather than a multiprocessing child of this one: the experiment's ``__main__`` module is
        never re-imported on the workers, so a script without an ``if __name__ == "__main__"`` guard is safe.
        """

        def __init__(self, scheduler: str, name: Any = None, **options: Any) -> None:
            super().__init__(scheduler, name=name, **options)
            self.worker_kwargs["name"] = name

    return MisenWorker


def _start_local(settings: DaskExecutorSettings) -> Any:
    from distributed import Scheduler, SpecCluster

    slots = local_layout(settings)
    mem = _physical_memory_gib() / len(slots)
    env = {LAYOUT_VARIABLE: json.dumps(slots)}
    cls = _worker_class()

    def worker(slot: dict[str, list[int]]) -> dict[str, Any]:
        options: dict[str, Any] = {
            "nthreads": len(slot["cpus"]),
            "resources": _slot_resources(slot, mem, settings.worker_resources),
            "env": env,
            "host": "127.0.0.1",
            "dashboard": False,
            "dashboard_address": "127.0.0.1:0",
            "silence_logs": logging.WARNING,
        }
        options.update(settings.cluster_options)
        return {"cls": cls, "options": {"worker_class": "distributed.Nanny", "worker_kwargs": options}}

    scheduler = {
        "cls": Scheduler,
        "options": {"host": "127.0.0.1", "port": 0, "dashboard": False, "dashboard_address": "127.0.0.1:0"},
    }
    fixed = {} if settings.adapt else {i: worker(slot) for i, slot in enumerate(slots)}
    # Workers started later by adapt get names 0, 1, ...: each picks its slot of the layout by its name.
    return SpecCluster(
        workers=fixed, scheduler=scheduler, worker=worker(slots[0]), silence_logs=logging.WARNING, name="misen"
    )


def _start_other(settings: DaskExecutorSettings) -> Any:
    cls = _class(CLUSTERS.get(settings.cluster, settings.cluster))
    options = dict(settings.cluster_options)
    if settings.cluster in _JOBQUEUE:
        if settings.workers is None and not settings.adapt:
            raise ConfigError(
                f"[executor] cluster = {settings.cluster!r} starts no job by itself: set workers (a fixed count) "
                "or adapt ({minimum = 0, maximum = 20})"
            )
        resources = _jobqueue_resources(settings)
        extra = list(options.get("worker_extra_args") or [])
        if resources and "--resources" not in extra:
            text = ",".join(f"{k}={v:g}" for k, v in resources.items())
            options["worker_extra_args"] = [*extra, "--resources", text]
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(f"[executor] cluster_options do not fit {cls.__module__}.{cls.__name__}: {exc}") from None


@contextlib.contextmanager
def connect(settings: DaskExecutorSettings) -> Iterator[Connection]:
    """A connection for the duration of a run; a cluster started here is closed at the end, whatever happens."""
    from distributed import Client

    if settings.address is not None:
        try:
            client = Client(settings.address, timeout=settings.timeout, set_as_default=False)
        except OSError as exc:
            raise MisenError(f"[executor] address: cannot reach the Dask scheduler at {settings.address}: {exc}") from None
        try:
            yield Connection(client=client, cluster=None, capacity=None)
        finally:
            with contextlib.suppress(Exception):
                client.close(timeout=10)
        return
    cluster = _start_local(settings) if settings.cluster == "local" else _start_other(settings)
    started: Any = None
    try:
        if settings.adapt:
            cluster.adapt(**settings.adapt)
        elif settings.workers is not None and settings.cluster != "local":
            cluster.scale(settings.workers)
        started = Client(cluster, timeout=settings.timeout, set_as_default=False)
        yield Connection(client=started, cluster=cluster, capacity=planned_capacity(settings))
    finally:
        if started is not None:
            with contextlib.suppress(BaseException):
                started.close(timeout=10)
        with contextlib.suppress(BaseException):
            cluster.close(timeout=30)
