"""Serializer for `jax.Array`: one ``.npy`` file written by misen-serializers-numpy, with its dtype kept.

NumPy has no descriptor for the extra dtypes JAX uses (``bfloat16``, ``float8_*``, ``int4``… from ml_dtypes):
``np.save`` would write them as anonymous void bytes. Such arrays are stored as their bits, viewed as an unsigned
integer array of the same item size, and the dtype's name is recorded; the load views them back. jax and NumPy
are imported inside the methods only.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from misen.errors import MisenError, ResultCorruptedError
from misen.serializer import LoadContext, SaveContext, Serializer
from misen_serializers_numpy.serializer import NDArraySerializer

__all__ = ["ARRAY_TYPES", "ArraySerializer", "from_numpy", "to_numpy"]

#: Qualified names of the concrete array class across jaxlib versions (claimed by name, never imported).
ARRAY_TYPES = (
    "jaxlib._jax.ArrayImpl",
    "jax.jaxlib._jax.Array",
    "jaxlib.xla_extension.ArrayImpl",
    "jax._src.array.ArrayImpl",
    "jax._src.basearray.Array",
)


def _extra_dtype(dtype: Any) -> bool:
    """Whether ``dtype`` comes from ml_dtypes (no ``.npy`` descriptor of its own)."""
    return str(dtype.type.__module__).split(".")[0] == "ml_dtypes"


def to_numpy(value: Any) -> tuple[Any, dict[str, Any]]:
    """A host NumPy array holding ``value``'s elements (no copy for a CPU array) and the metadata to undo it."""
    import numpy as np

    if not getattr(value, "is_fully_addressable", True):
        raise MisenError(
            "a jax.Array sharded across processes cannot be stored by one process; gather it first "
            "(jax.experimental.multihost_utils.process_allgather) and return the gathered array"
        )
    host = np.asarray(value)
    meta: dict[str, Any] = {"dtype": host.dtype.name, "shape": list(host.shape)}
    if _extra_dtype(host.dtype):
        host = host.view(np.dtype(f"u{host.dtype.itemsize}"))
        meta["stored_as"] = host.dtype.name
    sharding = getattr(value, "sharding", None)
    devices = sorted(str(d) for d in getattr(sharding, "device_set", ()))
    if len(devices) > 1:
        meta["sharding"] = repr(sharding)
    meta["devices"] = devices
    return host, meta


def from_numpy(host: Any, meta: dict[str, Any]) -> Any:
    """The NumPy array ``to_numpy`` wrote, with its original dtype (bits viewed back, no copy)."""
    import numpy as np

    if meta.get("stored_as"):
        import ml_dtypes

        name = meta["dtype"]
        dtype = getattr(ml_dtypes, name, None)
        if dtype is None:
            raise ResultCorruptedError(
                f"this JAX array has dtype {name!r}, which the installed ml_dtypes lacks"
            )
        return host.view(np.dtype(dtype))
    return host


class ArraySerializer(Serializer):
    """`jax.Array`: ``array.npy`` (what ``np.save`` writes) with the dtype kept, bfloat16 included.

    The array is read to the host without a copy on the CPU backend and written at disk speed (the checksum is
    computed from memory while writing). Loading reads the file (memory-mapped when the workspace allows) and
    puts the array on JAX's default device. **Sharding is dropped**: an array sharded over several devices is
    gathered and stored whole; its sharding is recorded in the metadata (``sharding``) for reference and the
    loaded array lives on one device, with a `UserWarning` saying so. Weak typing (``jnp.asarray(1.0)``) is not
    kept: the loaded array has a strong dtype.
    """

    PLUGIN_NAME = "jax.array"
    TYPES = ARRAY_TYPES
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        host, meta = to_numpy(value)
        NDArraySerializer().save(host, directory, ctx)
        return meta

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        import jax

        host = NDArraySerializer().load(directory, {"object": False}, ctx)
        if meta.get("sharding"):
            warnings.warn(
                f"this JAX array was sharded ({meta['sharding']}); its sharding is not stored, so it is loaded "
                "whole on the default device: reshard it with jax.device_put",
                UserWarning,
                stacklevel=2,
            )
        return jax.device_put(from_numpy(host, meta))
