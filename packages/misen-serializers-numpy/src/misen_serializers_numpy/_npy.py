"""Writing ``.npy`` files at disk speed: the header, then the array's memory in large writes, while another
thread computes the file's checksum from memory (so misen need not read the file back to checksum it)."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path
from typing import Any

from misen.serializer import SaveContext

__all__ = ["OVERLAP_MIN_BYTES", "write_npy"]

#: Arrays at least this large are written with the checksum computed alongside; smaller ones use ``np.save``.
OVERLAP_MIN_BYTES = 8 * 1024 * 1024
_CHUNK = 64 * 1024 * 1024


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

    if array.dtype.hasobject or array.nbytes < OVERLAP_MIN_BYTES or not (
        array.flags.c_contiguous or array.flags.f_contiguous
    ):
        with open(path, "wb") as f:
            np.save(f, array, allow_pickle=bool(array.dtype.hasobject))
        return
    header = _header(array)
    # a Fortran-ordered array is written in its memory order (the header says fortran_order), as np.save does
    ordered = array if array.flags.c_contiguous else array.T
    flat = memoryview(ordered.reshape(-1).view(np.uint8))
    digest = hashlib.blake2b(header, digest_size=16)
    hasher = threading.Thread(target=digest.update, args=(flat,), name="misen-npy-digest")
    hasher.start()  # hashlib releases the GIL on large buffers, as file writes do: the two overlap
    try:
        with open(path, "wb", buffering=0) as f:
            f.write(header)
            for start in range(0, len(flat), _CHUNK):
                chunk = flat[start : start + _CHUNK]
                done = 0
                while done < len(chunk):
                    done += f.write(chunk[done:])
            os.fsync(f.fileno())
    finally:
        hasher.join()
    ctx.record_digest(path, len(header) + len(flat), digest.hexdigest())
