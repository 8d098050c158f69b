"""Hasher for JAX values as task arguments: dtypes given as JAX's scalar types (``jnp.bfloat16``) and small arrays.

``jnp.float32`` is not a NumPy dtype but a class of JAX's own; it hashes as the dtype it stands for, so
``dtype=jnp.bfloat16`` is a stable argument. Identities name these types by the tag ``"jax"`` (`Hasher.TYPE_TAG`),
never by JAX's private class paths, so they survive a JAX upgrade that moves its classes. Small arrays (up to `MAX_ARRAY_BYTES`) hash by dtype, shape and
bytes, like misen-serializers-numpy's arrays; larger ones are refused with the advice to compute them in a task.
"""

from __future__ import annotations

from typing import Any

from misen.errors import UnhashableArgumentError
from misen.hashing import Hasher

from misen_serializers_jax.arrays import ARRAY_TYPES, to_numpy

__all__ = ["MAX_ARRAY_BYTES", "JaxHasher"]

#: Arrays larger than this are refused as task arguments.
MAX_ARRAY_BYTES = 1024 * 1024


class JaxHasher(Hasher):
    """JAX's scalar types (``jnp.float32``, ``jnp.bfloat16``…) by dtype name, and small `jax.Array` arguments."""

    PLUGIN_NAME = "jax"
    #: JAX's classes live under private, moving paths (``jax._src...``): identities name them by this tag instead.
    TYPE_TAG = "jax"
    TYPES = (
        "jax._src.numpy.scalar_types._ScalarMeta",
        "jax._src.numpy.lax_numpy._ScalarMeta",
        *ARRAY_TYPES,
    )

    def reduce(self, value: Any) -> Any:
        import numpy as np

        if isinstance(value, type) and hasattr(value, "dtype"):
            return ("jax.dtype", np.dtype(value.dtype).name)
        if hasattr(value, "addressable_shards"):
            if value.nbytes > MAX_ARRAY_BYTES:
                raise UnhashableArgumentError(
                    f"a JAX array of {value.nbytes} bytes is too large to be a task argument (the limit is "
                    f"{MAX_ARRAY_BYTES}); compute it in a Task and pass that task instead, so it is stored once"
                )
            host, meta = to_numpy(value)
            return ("jax.array", meta["dtype"], tuple(host.shape), np.ascontiguousarray(host).tobytes())
        raise UnhashableArgumentError(f"cannot hash a value of type {type(value).__qualname__}")
