"""misen: research experiments as cached, reproducible task graphs.

Public names are imported on first use, so ``import misen`` stays cheap.
"""

from __future__ import annotations

import importlib
import types
from typing import TYPE_CHECKING, Any

from misen.errors import PluginNotFoundError
from misen.providers import EXPORTS, PROVIDERS, install_hint

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

_EXPORTS = types.MappingProxyType({
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
})

def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    plugin = EXPORTS.get(name)
    if plugin is not None:
        try:
            mod = importlib.import_module(plugin[0])
        except ImportError:
            requirement = PROVIDERS[plugin[1]]
            raise PluginNotFoundError(f"{name} needs the {requirement} package: {install_hint(requirement)}") from None
        value = getattr(mod, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'misen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
