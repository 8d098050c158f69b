"""Writing ``.npy`` files at disk speed: the header, then the array's memory in large writes, while another
thread computes the file's checksum from memory (so misen need not read the file back to checksum it)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from misen.serializer import SaveContext
from misen.stdlib import OVERLAP_MIN_BYTES, write_buffers

__all__ = ["write_npy"]


def _header(array: Any) -> bytes:
    import numpy as np

    fmt = np.lib.format
    data = fmt.header_data_from_array_1_0(array)
    buf = io.BytesIO()
    try:
        fmt.write_array_header_1_0(buf, data)
    except ValueError:  # a header over 64 KiB (a huge structured dtype) needs format 2.0, as np.save does
        buf = io.BytesIO()
        fmt.write_array_header_2_0(buf, data)
    return buf.getvalue()


def write_npy(array: Any, path: Path, ctx: SaveContext) -> None:
    """Write ``array`` to ``path`` as ``.npy`` (what ``np.save`` writes), fsynced, recording its digest in ``ctx``."""
    import numpy as np

    if (
        array.dtype.hasobject
        or array.nbytes < OVERLAP_MIN_BYTES
        or not (array.flags.c_contiguous or array.flags.f_contiguous)
    ):
        with open(path, "wb") as f:
            np.save(f, array, allow_pickle=bool(array.dtype.hasobject))
        return
    header = _header(array)
    # a Fortran-ordered array is written in its memory order (the header says fortran_order), as np.save does
    ordered = array if array.flags.c_contiguous else array.T
    write_buffers(path, [memoryview(header), memoryview(ordered.reshape(-1).view(np.uint8))], ctx)
