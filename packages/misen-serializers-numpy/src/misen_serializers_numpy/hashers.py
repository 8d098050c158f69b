"""Hashers for NumPy values as task arguments: dtypes, scalars, and small arrays.

Decision on arrays: the seed asks for simple declarative arguments, and large runtime data should flow in as
the output of another task. Small arrays (up to `MAX_ARRAY_BYTES`, e.g. a grid from ``np.linspace``) are
common enough as configuration that refusing them would only push users to ``.tolist()``; they hash by dtype,
shape and C-order bytes. Larger ones (and object arrays) are refused with a message saying what to do.
"""

from __future__ import annotations

from typing import Any

from misen.errors import UnhashableArgumentError
from misen.hashing import Hasher

__all__ = ["MAX_ARRAY_BYTES", "NumpyHasher"]

#: Arrays larger than this are refused as task arguments.
MAX_ARRAY_BYTES = 1024 * 1024


def _descr(dtype: Any) -> Any:
    import numpy as np

    descr = np.lib.format.dtype_to_descr(dtype)
    return descr if isinstance(descr, str) else repr(descr)


class NumpyHasher(Hasher):
    """`numpy.dtype`, NumPy scalars (`numpy.generic`) and small `numpy.ndarray` arguments.

    Reductions are platform independent: dtypes by their ``.npy`` description (byte order explicit), values by
    their bytes in that byte order. ``np.float64(1.0)`` and ``1.0`` hash differently (the type is part of the
    identity), as do arrays of different dtype or shape with equal bytes.
    """

    PLUGIN_NAME = "numpy"
    TYPES = ("numpy.dtype", "numpy.generic", "numpy.ndarray")

    def reduce(self, value: Any) -> Any:
        import numpy as np

        if isinstance(value, np.dtype):
            return _descr(value)
        if isinstance(value, np.generic):
            if value.dtype.hasobject:
                return value.item()
            return (_descr(value.dtype), value.tobytes())
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise UnhashableArgumentError(
                    "a NumPy object array cannot be a task argument; pass a list, or let the array flow in as the "
                    "output of another Task"
                )
            if value.nbytes > MAX_ARRAY_BYTES:
                raise UnhashableArgumentError(
                    f"a NumPy array of {value.nbytes} bytes is too large to be a task argument (the limit is "
                    f"{MAX_ARRAY_BYTES}); compute it in a Task and pass that task instead, so it is stored once"
                )
            return (_descr(value.dtype), tuple(value.shape), np.ascontiguousarray(value).tobytes())
        raise UnhashableArgumentError(f"cannot hash a value of type {type(value).__qualname__}")
