"""misen serializers and hashers for NumPy: arrays (memory-mapped loads), scalars and dtypes."""

from __future__ import annotations

__all__: list[str] = []
