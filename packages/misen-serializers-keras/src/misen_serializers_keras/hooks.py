"""Hook implementations of misen_serializers_keras: registers its serializers and hasher (imports no keras or
tensorflow)."""

from __future__ import annotations

from typing import Any

from misen.hookspecs import hookimpl

from misen_serializers_keras.hashers import TensorFlowHasher
from misen_serializers_keras.models import ModelSerializer
from misen_serializers_keras.tensors import TensorSerializer, VariableSerializer


@hookimpl
def misen_add_serializers() -> list[Any]:
    return [ModelSerializer, TensorSerializer, VariableSerializer]


@hookimpl
def misen_add_hashers() -> list[Any]:
    return [TensorFlowHasher()]
