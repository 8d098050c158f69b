"""Serializer for SciPy sparse matrices and arrays: ``save_npz`` without compression (scipy imported on use).

It lives with NumPy's serializers because SciPy is NumPy's companion; it only ever runs when a SciPy value is
met, so this package does not depend on SciPy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from misen.serializer import LoadContext, SaveContext, Serializer

__all__ = ["SparseSerializer"]

SPARSE_FILE = "sparse.npz"
_SAVABLE = frozenset({"csr", "csc", "bsr", "dia", "coo"})


class SparseSerializer(Serializer):
    """`scipy.sparse` matrices and arrays (``csr_matrix``, ``csr_array``, …): one uncompressed ``.npz``.

    ``lil`` and ``dok`` formats, which ``save_npz`` cannot write, are stored as CSR and converted back on load.
    Matrix versus array (``spmatrix``/``sparray``), format, dtype and shape are kept.
    """

    PLUGIN_NAME = "scipy.sparse"
    TYPES = (
        "scipy.sparse._base._spbase",
        "scipy.sparse._matrix.spmatrix",
        "scipy.sparse._base.spmatrix",
        "scipy.sparse.base.spmatrix",
    )
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import scipy.sparse as sp

        fmt = value.format
        stored = value if fmt in _SAVABLE else value.asformat("csr")
        sp.save_npz(directory / SPARSE_FILE, stored, compressed=False)
        return {"format": fmt, "shape": list(value.shape), "dtype": str(value.dtype)}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        import scipy.sparse as sp

        value = sp.load_npz(directory / SPARSE_FILE)
        fmt = meta.get("format")
        return value.asformat(fmt) if fmt and fmt != value.format else value
