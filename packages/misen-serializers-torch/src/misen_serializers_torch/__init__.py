"""misen serializers and hashers for PyTorch: tensors, state dicts/checkpoints and modules."""

from __future__ import annotations

__all__: list[str] = []
