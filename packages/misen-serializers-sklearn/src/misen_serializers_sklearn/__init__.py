"""misen serializer for scikit-learn estimators and pipelines (skops, with joblib as the fallback)."""

from __future__ import annotations

__all__: list[str] = []
