"""misen serializers and hashers for Keras and TensorFlow: models as ``.keras`` archives, tensors and variables as
``.npy`` files with their dtype."""

from __future__ import annotations

__all__: list[str] = []
