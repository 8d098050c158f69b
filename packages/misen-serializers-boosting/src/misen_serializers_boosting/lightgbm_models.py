"""Serializers for LightGBM: `lightgbm.Booster` and the scikit-learn wrappers (``LGBMClassifier``,
``LGBMRegressor``, ``LGBMRanker``) as LightGBM's own text model file. lightgbm is imported inside the methods only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from misen.serializer import LoadContext, SaveContext, Serializer

from misen_serializers_boosting.wrapper_state import read_wrapper, write_wrapper

__all__ = ["LightGBMBoosterSerializer", "LightGBMWrapperSerializer"]

MODEL_FILE = "model.txt"


class LightGBMBoosterSerializer(Serializer):
    """`lightgbm.Booster`: ``model.txt`` (``Booster.save_model``), read back with
    ``lightgbm.Booster(model_file=...)``. As LightGBM does by default, a booster trained with early stopping is
    saved up to its best iteration, so predictions after loading equal the booster's own default predictions."""

    PLUGIN_NAME = "lightgbm.booster"
    TYPES = ("lightgbm.basic.Booster",)
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import lightgbm

        value.save_model(str(directory / MODEL_FILE))
        return {"lightgbm_version": lightgbm.__version__}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        import lightgbm

        return lightgbm.Booster(model_file=str(directory / MODEL_FILE))


class LightGBMWrapperSerializer(Serializer):
    """LightGBM's scikit-learn wrappers (`lightgbm.LGBMModel` and subclasses): the booster as ``model.txt`` and
    ``wrapper.json`` with the class, its ``get_params()`` and the attributes ``fit`` set (classes, label encoder,
    number of features, best iteration and scores…).

    LightGBM has no public way to rebuild a fitted wrapper from a model file, so the load sets those attributes
    back as ``fit`` left them (their names are LightGBM's own, recorded with its version in the metadata) and
    attaches the booster read from ``model.txt``. An unfitted wrapper is stored as its parameters alone.
    """

    PLUGIN_NAME = "lightgbm.sklearn"
    TYPES = ("lightgbm.sklearn.LGBMModel",)
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import lightgbm

        params = value.get_params(deep=False)
        state = {k: v for k, v in vars(value).items() if k not in params and k != "_Booster"}
        booster = getattr(value, "_Booster", None)
        if booster is not None:
            booster.save_model(str(directory / MODEL_FILE))
        engine = write_wrapper(directory, value, params, state)
        return {"lightgbm_version": lightgbm.__version__, "fitted": booster is not None, "wrapper": engine}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        import lightgbm

        cls, params, state = read_wrapper(directory, meta.get("wrapper", "json"))
        model = cls(**params)
        for name, attr in state.items():
            setattr(model, name, attr)
        if meta.get("fitted"):
            model._Booster = lightgbm.Booster(model_file=str(directory / MODEL_FILE))
        return model
