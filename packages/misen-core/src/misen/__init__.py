"""misen: research experiments as cached, reproducible task graphs.

Public names are imported on first use, so ``import misen`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from misen._builtin.in_process import InProcessExecutor
    from misen._builtin.memory import MemoryWorkspace
    from misen.errors import MisenError, NotCachedError, TaskLockedError
    from misen.executor import Executor
    from misen.experiment import Experiment
    from misen.hashing import Hasher
    from misen.hookspecs import hookimpl
    from misen.resources import AssignedResources, Resources
    from misen.runner import run
    from misen.serializer import Serializer
    from misen.taskmeta import meta
    from misen.tasks import ASSIGNED_RESOURCES, ASSIGNED_RESOURCES_PER_NODE, WORK_DIR, Task
    from misen.workspace import Workspace

__all__ = [
    "ASSIGNED_RESOURCES",
    "ASSIGNED_RESOURCES_PER_NODE",
    "WORK_DIR",
    "AssignedResources",
    "DiskWorkspace",
    "Executor",
    "Experiment",
    "Hasher",
    "InProcessExecutor",
    "LocalExecutor",
    "MemoryWorkspace",
    "MisenError",
    "NotCachedError",
    "Resources",
    "S3Workspace",
    "Serializer",
    "SlurmExecutor",
    "Task",
    "TaskLockedError",
    "Workspace",
    "hookimpl",
    "meta",
    "run",
]

_EXPORTS = {
    "Task": "misen.tasks",
    "WORK_DIR": "misen.tasks",
    "ASSIGNED_RESOURCES": "misen.tasks",
    "ASSIGNED_RESOURCES_PER_NODE": "misen.tasks",
    "meta": "misen.taskmeta",
    "Resources": "misen.resources",
    "AssignedResources": "misen.resources",
    "Experiment": "misen.experiment",
    "Executor": "misen.executor",
    "Workspace": "misen.workspace",
    "Serializer": "misen.serializer",
    "Hasher": "misen.hashing",
    "hookimpl": "misen.hookspecs",
    "run": "misen.runner",
    "MisenError": "misen.errors",
    "NotCachedError": "misen.errors",
    "TaskLockedError": "misen.errors",
    "InProcessExecutor": "misen._builtin.in_process",
    "MemoryWorkspace": "misen._builtin.memory",
}

# Backends that live in plugin packages, importable from here for convenience.
_PLUGIN_EXPORTS = {
    "LocalExecutor": ("misen_executor_local", "misen-executor-local"),
    "SlurmExecutor": ("misen_executor_slurm", "misen[slurm]"),
    "DiskWorkspace": ("misen_workspace_disk", "misen-workspace-disk"),
    "S3Workspace": ("misen_workspace_s3", "misen[s3]"),
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    plugin = _PLUGIN_EXPORTS.get(name)
    if plugin is not None:
        try:
            mod = importlib.import_module(plugin[0])
        except ImportError:
            from misen.errors import PluginNotFoundError

            raise PluginNotFoundError(f'{name} needs the {plugin[1]} package: pip install "{plugin[1]}"') from None
        value = getattr(mod, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'misen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
