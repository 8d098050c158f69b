"""Serializers for NumPy: arrays as ``.npy`` (memory-mapped on load), scalars and dtypes.

NumPy is imported inside `save`/`load` only, when a NumPy value is met; registering imports nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from misen.serializer import LoadContext, SaveContext, Serializer

from misen_serializers_numpy._npy import write_npy

__all__ = ["DtypeSerializer", "NDArraySerializer", "ScalarSerializer"]

ARRAY_FILE = "array.npy"


class NDArraySerializer(Serializer):
    """`numpy.ndarray` (and `numpy.memmap`) as one ``.npy`` file.

    Saving writes the array's memory straight into the file (no intermediate copy) while another thread
    computes the file's checksum from memory, so misen never reads the file back; loading memory-maps it
    copy-on-write when the workspace allows (``ctx.mmap``): the array is paged in as it is read, and writing to
    it never touches the stored result. Object arrays are the one case that needs pickle: they are written with
    ``allow_pickle=True``, recorded as such, and loaded fully (never memory-mapped). Other subclasses (masked
    arrays, ``np.matrix``) are declined and fall back to pickle, which keeps their type.
    """

    PLUGIN_NAME = "numpy.ndarray"
    TYPES = ("numpy.ndarray",)
    FORMAT_VERSION = 1

    def match(self, value: Any) -> bool:
        import numpy as np

        return type(value) in (np.ndarray, np.memmap)

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import numpy as np

        is_object = value.dtype.hasobject
        if isinstance(value, np.memmap):
            value = np.asarray(value)  # same memory, plain ndarray: np.save would not treat it otherwise
        if hasattr(ctx, "record_digest"):
            write_npy(value, directory / ARRAY_FILE, ctx)
        else:  # a misen-core without precomputed digests
            with open(directory / ARRAY_FILE, "wb") as f:
                np.save(f, value, allow_pickle=is_object)
        return {"dtype": str(value.dtype), "shape": list(value.shape), "object": bool(is_object)}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        import numpy as np

        path = directory / ARRAY_FILE
        if meta.get("object"):
            return np.load(path, allow_pickle=True)
        if ctx.mmap and path.stat().st_size > 4096:
            array = np.load(path, mmap_mode="c", allow_pickle=False)
            if array.size:
                return array
        return np.load(path, allow_pickle=False)

    def preview(self, value: Any) -> Any:
        """Shape, dtype, and the minimum and maximum of numeric arrays (NaNs ignored)."""
        from misen.preview import Preview

        return Preview.text(array_summary(value))


def array_summary(value: Any) -> str:
    """``ndarray shape=(3, 4) dtype=float64 min=0 max=1`` (range only for numeric, non-empty arrays)."""
    import numpy as np

    text = f"ndarray shape={tuple(value.shape)} dtype={value.dtype}"
    if value.size and (np.issubdtype(value.dtype, np.number) or value.dtype == bool):
        finite = value[~np.isnan(value)] if np.issubdtype(value.dtype, np.floating) else value
        if finite.size:
            text += f" min={finite.min().item()!r} max={finite.max().item()!r}"
    return text


class ScalarSerializer(Serializer):
    """NumPy scalars (`numpy.generic`: ``np.float32(1)``, ``np.datetime64(...)``, ``np.str_``…), kept exactly.

    Stored as a 0-d ``.npy``; the load gives back a scalar of the same NumPy type. Inside a container a scalar
    stays in the container's pickle.
    """

    PLUGIN_NAME = "numpy.scalar"
    TYPES = ("numpy.generic",)
    FORMAT_VERSION = 1
    CONTAINER_INLINE: ClassVar[bool] = True

    def match(self, value: Any) -> bool:
        return not value.dtype.hasobject

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import numpy as np

        arr = np.asarray(value)
        with open(directory / "scalar.npy", "wb") as f:
            np.save(f, arr, allow_pickle=False)
        return {"dtype": str(arr.dtype)}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        import numpy as np

        return np.load(directory / "scalar.npy", allow_pickle=False)[()]


class DtypeSerializer(Serializer):
    """`numpy.dtype` (structured ones included), as the header of an empty ``.npy``."""

    PLUGIN_NAME = "numpy.dtype"
    TYPES = ("numpy.dtype",)
    FORMAT_VERSION = 1
    CONTAINER_INLINE: ClassVar[bool] = True

    def match(self, value: Any) -> bool:
        return not value.hasobject

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import numpy as np

        with open(directory / "dtype.npy", "wb") as f:
            np.save(f, np.empty(0, dtype=value), allow_pickle=False)
        return {"dtype": str(value)}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        import numpy as np

        return np.load(directory / "dtype.npy", allow_pickle=False).dtype
