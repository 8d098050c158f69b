"""The standard-library serializers and hashers as a built-in plugin (the classes live in `misen.stdlib`)."""

from __future__ import annotations

from typing import Any

from misen.hookspecs import hookimpl
from misen.serializer import Serializer
from misen.stdlib import (
    BytesSerializer,
    ContainerSerializer,
    ModelHasher,
    PickleSerializer,
    StdlibHasher,
    StrSerializer,
)


@hookimpl
def misen_add_serializers() -> list[type[Serializer]]:
    return [PickleSerializer, BytesSerializer, StrSerializer, ContainerSerializer]


@hookimpl
def misen_add_hashers() -> list[Any]:
    return [StdlibHasher(), ModelHasher()]
