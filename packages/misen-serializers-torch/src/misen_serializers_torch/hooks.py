"""Hook implementations of misen_serializers_torch: registers its serializers and hasher (imports no torch)."""

from __future__ import annotations

from typing import Any

from misen import hookimpl

from misen_serializers_torch.hashers import TorchHasher
from misen_serializers_torch.serializer import CheckpointSerializer, ModuleSerializer, TensorSerializer


@hookimpl
def misen_add_serializers() -> list[Any]:
    return [TensorSerializer, CheckpointSerializer, ModuleSerializer]


@hookimpl
def misen_add_hashers() -> list[Any]:
    return [TorchHasher()]
