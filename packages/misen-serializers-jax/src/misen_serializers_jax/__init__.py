"""misen serializers and hashers for JAX: arrays (bfloat16 and the other ml_dtypes types included) and pytrees of
arrays, stored as plain ``.npy`` files plus a JSON description of the tree."""

from __future__ import annotations

__all__: list[str] = []
