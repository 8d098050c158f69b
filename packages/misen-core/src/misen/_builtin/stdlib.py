"""Built-in serializers for the standard library (pickle, with dill for what pickle cannot do)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from misen.hookspecs import hookimpl
from misen.serializer import LoadContext, SaveContext, Serializer

__all__ = ["PickleSerializer"]


class PickleSerializer(Serializer):
    """Any picklable value; dill stands in for what pickle refuses (lambdas, local classes)."""

    PLUGIN_NAME = "pickle"
    TYPES = ()
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        path = directory / "value.pkl"
        try:
            data = pickle.dumps(value, protocol=5)
            engine = "pickle"
        except Exception:
            import dill

            data = dill.dumps(value, recurse=True)
            engine = "dill"
        with open(path, "wb") as f:
            f.write(data)
        return {"engine": engine}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        data = (directory / "value.pkl").read_bytes()
        if meta.get("engine") == "dill":
            import dill

            return dill.loads(data)
        return pickle.loads(data)


@hookimpl
def misen_add_serializers() -> list[type[Serializer]]:
    return [PickleSerializer]


@hookimpl
def misen_add_hashers() -> list[Any]:
    return []
