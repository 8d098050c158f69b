"""Hook implementations of misen_serializers_numpy: registers its serializers and hasher (imports no NumPy)."""

from __future__ import annotations

from typing import Any

from misen import hookimpl

from misen_serializers_numpy.hashers import NumpyHasher
from misen_serializers_numpy.scipy_sparse import SparseSerializer
from misen_serializers_numpy.serializer import DtypeSerializer, NDArraySerializer, ScalarSerializer


@hookimpl
def misen_add_serializers() -> list[Any]:
    return [NDArraySerializer, ScalarSerializer, DtypeSerializer, SparseSerializer]


@hookimpl
def misen_add_hashers() -> list[Any]:
    return [NumpyHasher()]
