"""Serializers for XGBoost: `xgboost.Booster` and the scikit-learn wrappers (``XGBClassifier``, ``XGBRegressor``,
``XGBRanker``, random forests…) as XGBoost's own UBJSON model file. xgboost is imported inside the methods only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from misen.serializer import LoadContext, SaveContext, Serializer

from misen_serializers_boosting.wrapper_state import read_wrapper, write_wrapper

__all__ = ["XGBoostBoosterSerializer", "XGBoostWrapperSerializer"]

MODEL_FILE = "model.ubj"


class XGBoostBoosterSerializer(Serializer):
    """`xgboost.Booster`: ``model.ubj`` (``Booster.save_model``: trees, objective, feature names and types, the
    booster's attributes), read back with ``xgboost.Booster(model_file=...)``."""

    PLUGIN_NAME = "xgboost.booster"
    TYPES = ("xgboost.core.Booster",)
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import xgboost

        value.save_model(directory / MODEL_FILE)
        return {"xgboost_version": xgboost.__version__}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        import xgboost

        return xgboost.Booster(model_file=directory / MODEL_FILE)


class XGBoostWrapperSerializer(Serializer):
    """XGBoost's scikit-learn wrappers (`xgboost.XGBModel` and subclasses): ``model.ubj`` written by the wrapper's
    ``save_model`` (which keeps the classes and the estimator type) and ``wrapper.json`` with the class and its
    ``get_params()``. Loading builds the class with those parameters and calls ``load_model``; ``get_params()``
    then returns the parameters as they were given (XGBoost's ``load_model`` alone would fill some from the file). An unfitted
    wrapper is stored as its parameters alone. Declared before scikit-learn's estimator serializer in dispatch
    order (a nearer class in the MRO), so misen-serializers-sklearn never pickles an XGBoost model."""

    PLUGIN_NAME = "xgboost.sklearn"
    TYPES = ("xgboost.sklearn.XGBModel",)
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import xgboost

        fitted = bool(value.__sklearn_is_fitted__())
        if fitted:
            value.save_model(directory / MODEL_FILE)
        engine = write_wrapper(directory, value, value.get_params(deep=False), {})
        return {"xgboost_version": xgboost.__version__, "fitted": fitted, "wrapper": engine}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        cls, params, _ = read_wrapper(directory, meta.get("wrapper", "json"))
        model = cls(**params)
        if meta.get("fitted"):
            model.load_model(directory / MODEL_FILE)
            # load_model fills parameters left to XGBoost (base_score…) from the file; keep those the user gave,
            # as attributes only (set_params would change the loaded booster)
            for name, param in params.items():
                setattr(model, name, param)
        return model
