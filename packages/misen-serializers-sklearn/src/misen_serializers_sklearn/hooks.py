"""Hook implementations of misen_serializers_sklearn: registers its serializer (imports no scikit-learn)."""

from __future__ import annotations

from typing import Any

from misen import hookimpl

from misen_serializers_sklearn.serializer import EstimatorSerializer


@hookimpl
def misen_add_serializers() -> list[Any]:
    return [EstimatorSerializer]
