"""Hook implementations of misen_serializers_onnx: registers its serializer (imports no onnx)."""

from __future__ import annotations

from typing import Any

from misen.hookspecs import hookimpl

from misen_serializers_onnx.serializer import OnnxModelSerializer


@hookimpl
def misen_add_serializers() -> list[Any]:
    return [OnnxModelSerializer]
