"""Serializer for ONNX models: `onnx.ModelProto` as ``model.onnx``, the protobuf file every ONNX runtime reads.

onnx is imported inside `save`/`load` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from misen.serializer import LoadContext, SaveContext, Serializer

__all__ = ["EXTERNAL_DATA_BYTES", "OnnxModelSerializer"]

#: Models at least this large keep their tensors in ``model.onnx.data`` beside ``model.onnx`` (protobuf messages
#: are limited to 2 GiB).
EXTERNAL_DATA_BYTES = 1 << 31


class OnnxModelSerializer(Serializer):
    """`onnx.ModelProto` as ``model.onnx`` (``onnx.save_model``), read back with ``onnx.load``.

    The loaded model is the same protobuf message (``SerializeToString()`` equal), so a runtime gives the same
    outputs. Models of 2 GiB or more keep their weights in ``model.onnx.data``, ONNX's external-data layout,
    which ``onnx.load`` and ONNX Runtime find beside the model file.
    """

    PLUGIN_NAME = "onnx.model"
    TYPES = ("onnx.onnx_ml_pb2.ModelProto",)
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import onnx

        external = value.ByteSize() >= EXTERNAL_DATA_BYTES
        if external:
            value = _copy(value)
            onnx.save_model(
                value,
                str(directory / "model.onnx"),
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location="model.onnx.data",
                size_threshold=0,
            )
        else:
            onnx.save_model(value, str(directory / "model.onnx"))
        return {"external_data": external}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        import onnx

        return onnx.load(str(directory / "model.onnx"), load_external_data=True)


def _copy(model: Any) -> Any:
    """A copy of ``model``: saving with external data rewrites the tensors of the message it is given."""
    copy = type(model)()
    copy.CopyFrom(model)
    return copy
