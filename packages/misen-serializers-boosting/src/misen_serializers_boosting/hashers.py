"""Hasher for unfitted boosting models as task arguments: ``XGBClassifier(max_depth=3)`` is a model's
specification, hashed as its class and parameters. A fitted model is refused: let it flow in as a task's output."""

from __future__ import annotations

import json
from typing import Any

from misen.errors import UnhashableArgumentError
from misen.hashing import Hasher

from misen_serializers_boosting.wrapper_state import NotJsonError, encode

__all__ = ["BoostingHasher"]


def _fitted(value: Any) -> bool:
    if hasattr(value, "is_fitted"):  # CatBoost
        return bool(value.is_fitted())
    return bool(value.__sklearn_is_fitted__())


def _same(a: Any, b: Any) -> bool:
    return a is b or (type(a) is type(b) and (a == b or (a != a and b != b)))


class BoostingHasher(Hasher):
    """Unfitted XGBoost, LightGBM and CatBoost models, by class and the parameters that differ from the class's
    defaults (so a new library version adding parameters leaves identities unchanged)."""

    PLUGIN_NAME = "boosting"
    TYPES = ("xgboost.sklearn.XGBModel", "lightgbm.sklearn.LGBMModel", "catboost.core.CatBoost")

    def reduce(self, value: Any) -> Any:
        cls = type(value)
        if _fitted(value):
            raise UnhashableArgumentError(
                f"a fitted {cls.__qualname__} cannot be a task argument; pass the unfitted model (its parameters), "
                "or let the fitted model flow in as the output of another Task"
            )
        try:
            defaults = cls().get_params()
            given = {
                k: v for k, v in value.get_params().items() if k not in defaults or not _same(v, defaults[k])
            }
            params = json.dumps(encode(given), sort_keys=True)
        except NotJsonError as exc:
            raise UnhashableArgumentError(
                f"a {cls.__qualname__} whose parameters hold a {exc} cannot be a task argument; pass plain "
                "parameters (numbers, strings, lists, dicts)"
            ) from None
        return (f"{cls.__module__}.{cls.__qualname__}", params)
