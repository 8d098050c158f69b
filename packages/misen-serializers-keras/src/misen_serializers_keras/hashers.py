"""Hasher for TensorFlow's declarative values as task arguments: dtypes and shapes.

Tensors and models are refused as arguments, as the seed asks: let them flow in as another task's output.
"""

from __future__ import annotations

from typing import Any

from misen.errors import UnhashableArgumentError
from misen.hashing import Hasher

__all__ = ["TensorFlowHasher"]


class TensorFlowHasher(Hasher):
    """`tf.DType` by name (``"bfloat16"``) and `tf.TensorShape` by its dimensions (``None`` for unknown ones)."""

    PLUGIN_NAME = "tensorflow"
    TYPES = (
        "tensorflow.python.framework.dtypes.DType",
        "tensorflow.python.framework.tensor_shape.TensorShape",
    )

    def reduce(self, value: Any) -> Any:
        import tensorflow as tf

        if isinstance(value, tf.dtypes.DType):
            return ("tf.dtype", value.name)
        if isinstance(value, tf.TensorShape):
            return ("tf.shape", None if value.rank is None else tuple(value.as_list()))
        raise UnhashableArgumentError(f"cannot hash a value of type {type(value).__qualname__}")
