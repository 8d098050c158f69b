"""Hook implementations of misen_serializers_boosting: registers its serializers and hasher (imports none of
xgboost, lightgbm or catboost)."""

from __future__ import annotations

from typing import Any

from misen.hookspecs import hookimpl

from misen_serializers_boosting.catboost_models import CatBoostSerializer
from misen_serializers_boosting.hashers import BoostingHasher
from misen_serializers_boosting.lightgbm_models import LightGBMBoosterSerializer, LightGBMWrapperSerializer
from misen_serializers_boosting.xgboost_models import XGBoostBoosterSerializer, XGBoostWrapperSerializer


@hookimpl
def misen_add_serializers() -> list[Any]:
    return [
        XGBoostBoosterSerializer,
        XGBoostWrapperSerializer,
        LightGBMBoosterSerializer,
        LightGBMWrapperSerializer,
        CatBoostSerializer,
    ]


@hookimpl
def misen_add_hashers() -> list[Any]:
    return [BoostingHasher()]
