"""Serializer for CatBoost models (``CatBoost``, ``CatBoostClassifier``, ``CatBoostRegressor``,
``CatBoostRanker``) as CatBoost's own ``.cbm`` file. catboost is imported inside the methods only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from misen.serializer import LoadContext, SaveContext, Serializer

from misen_serializers_boosting.wrapper_state import read_wrapper, write_wrapper

__all__ = ["CatBoostSerializer"]

MODEL_FILE = "model.cbm"


class CatBoostSerializer(Serializer):
    """`catboost.CatBoost` and its subclasses: ``model.cbm`` (``save_model``, CatBoost's binary format, which keeps
    trees, class names, feature names and categorical features) and ``wrapper.json`` with the class and the
    parameters given to it (``get_params()``). Loading builds the class with those parameters and calls
    ``load_model``; the parameters CatBoost reads from the file (the loss function it chose…) are kept too, so
    ``get_params()`` after loading includes them, exactly as after CatBoost's own ``load_model``. An unfitted
    model is stored as its parameters alone."""

    PLUGIN_NAME = "catboost.model"
    TYPES = ("catboost.core.CatBoost",)
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import catboost

        fitted = bool(value.is_fitted())
        if fitted:
            value.save_model(str(directory / MODEL_FILE), format="cbm")
        engine = write_wrapper(directory, value, value.get_params(), {})
        return {"catboost_version": catboost.__version__, "fitted": fitted, "wrapper": engine}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        cls, params, _ = read_wrapper(directory, meta.get("wrapper", "json"))
        model = cls(**params)
        if meta.get("fitted"):
            model.load_model(str(directory / MODEL_FILE), format="cbm")
        return model
