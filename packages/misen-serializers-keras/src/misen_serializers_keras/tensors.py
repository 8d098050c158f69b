"""Serializer for TensorFlow tensors and variables: one ``.npy`` file each, with the dtype kept.

NumPy has no ``.npy`` descriptor for ``bfloat16`` and the other ml_dtypes types TensorFlow uses: such tensors
are stored as their bits (an unsigned integer array of the same item size) and the dtype's name is recorded.
String tensors are stored as fixed-width bytes (``S`` dtype), never pickled. tensorflow is imported inside the
methods only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from misen.errors import MisenError, ResultCorruptedError
from misen.serializer import DigestWriter, LoadContext, SaveContext, Serializer

__all__ = ["TensorSerializer", "VariableSerializer"]

TENSOR_FILE = "tensor.npy"


def _write(value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
    import numpy as np

    try:
        host = value.numpy()
    except (AttributeError, NotImplementedError) as exc:
        raise MisenError(
            f"a symbolic TensorFlow tensor ({type(value).__name__}) has no value to store ({exc}); return the "
            "result of running it (an eager tensor)"
        ) from None
    host = np.asarray(host)
    meta: dict[str, Any] = {
        "dtype": value.dtype.name,
        "shape": list(host.shape),
        "device": value.device or "",
    }
    if host.dtype.hasobject:  # tf.string: bytes of any length
        host = host.astype(np.bytes_)
        meta["stored_as"] = "bytes"
    elif str(host.dtype.type.__module__).split(".")[0] == "ml_dtypes":
        host = host.view(np.dtype(f"u{host.dtype.itemsize}"))
        meta["stored_as"] = host.dtype.name
    with DigestWriter(directory / TENSOR_FILE, ctx) as f:
        np.save(f, host, allow_pickle=False)
    return meta


def _read(directory: Path, meta: dict[str, Any]) -> Any:
    import numpy as np
    import tensorflow as tf

    host = np.load(directory / TENSOR_FILE, allow_pickle=False)
    dtype = tf.dtypes.as_dtype(meta["dtype"])
    stored = meta.get("stored_as")
    if stored == "bytes":
        return tf.constant(host.astype(object), dtype=dtype)
    if stored:
        host = host.view(dtype.as_numpy_dtype)
    if host.dtype != dtype.as_numpy_dtype:
        raise ResultCorruptedError(
            f"the tensor at {directory} has dtype {host.dtype}, {meta['dtype']} recorded"
        )
    return tf.constant(host, dtype=dtype)


class TensorSerializer(Serializer):
    """`tf.Tensor` (eager): ``tensor.npy`` with dtype (``bfloat16`` and strings included) and shape kept.

    Loaded as a constant on TensorFlow's default device; the device it was on is recorded (``device``).
    """

    PLUGIN_NAME = "tensorflow.tensor"
    TYPES = ("tensorflow.python.framework.tensor.Tensor", "tensorflow.python.framework.ops.Tensor")
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        return _write(value, directory, ctx)

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        return _read(directory, meta)


class VariableSerializer(Serializer):
    """`tf.Variable`: its value as ``tensor.npy`` (like a tensor), its name and ``trainable`` flag kept."""

    PLUGIN_NAME = "tensorflow.variable"
    TYPES = ("tensorflow.python.ops.variables.Variable",)
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        meta = _write(value, directory, ctx)
        meta.update(name=value.name.split(":")[0], trainable=bool(value.trainable))
        return meta

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        import tensorflow as tf

        return tf.Variable(
            _read(directory, meta), name=meta.get("name"), trainable=meta.get("trainable", True)
        )
