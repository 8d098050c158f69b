"""misen serializer for ONNX models (`onnx.ModelProto`), stored as ``.onnx`` files."""

from __future__ import annotations

__all__: list[str] = []
