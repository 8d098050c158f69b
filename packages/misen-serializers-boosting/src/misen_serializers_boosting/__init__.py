"""misen serializers and hashers for gradient boosting libraries: XGBoost, LightGBM and CatBoost boosters and
their scikit-learn wrappers, each stored in the library's own model file plus the wrapper's parameters."""

from __future__ import annotations

__all__: list[str] = []
