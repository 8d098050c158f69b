"""Hook implementations of misen_serializers_huggingface: registers its serializers and hasher (imports neither
datasets nor transformers)."""

from __future__ import annotations

from typing import Any

from misen.hookspecs import hookimpl

from misen_serializers_huggingface.datasets_io import DatasetDictSerializer, DatasetSerializer
from misen_serializers_huggingface.hashers import HuggingFaceHasher
from misen_serializers_huggingface.transformers_io import (
    ConfigSerializer,
    ModelSerializer,
    TokenizerSerializer,
)


@hookimpl
def misen_add_serializers() -> list[Any]:
    return [DatasetSerializer, DatasetDictSerializer, ModelSerializer, TokenizerSerializer, ConfigSerializer]


@hookimpl
def misen_add_hashers() -> list[Any]:
    return [HuggingFaceHasher()]
