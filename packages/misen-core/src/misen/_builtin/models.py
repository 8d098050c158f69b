"""Built-in serializer for data models: Pydantic models (v2, and v1 through ``pydantic.v1``), msgspec structs and
attrs instances, stored as JSON with the class's importable name.

Claimed by type name (``pydantic.main.BaseModel``, ``msgspec.Struct``) and, for attrs, by a `match` on the
class's ``__attrs_attrs__``: none of the three libraries is imported by misen. A field JSON cannot hold (an array,
a set, a tuple in an attrs class) is stored on its own with whatever serializer fits it (NumPy's ``.npy``, else
pickle); the rest stays JSON.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, ClassVar

from misen._pickling import lookup
from misen.errors import ResultCorruptedError
from misen.hookspecs import hookimpl
from misen.serializer import LoadContext, SaveContext, Serializer
from misen.stdlib import PickleSerializer

__all__ = ["ModelSerializer", "class_name", "import_class"]

MODEL_FILE = "model.json"
FIELDS_DIR = "fields"

_PYDANTIC = "pydantic.main.BaseModel"
_PYDANTIC_V1 = "pydantic.v1.main.BaseModel"
_MSGSPEC = "msgspec.Struct"


def class_name(cls: type) -> str | None:
    """``"module:Qualified.Name"`` of ``cls`` when another process can import it, else None."""
    qual = cls.__qualname__
    if "<" in qual or "[" in qual or cls.__module__ in ("__main__", "builtins"):
        return None
    name = f"{cls.__module__}:{qual}"
    try:
        return name if import_class(name) is cls else None
    except Exception:
        return None


def import_class(name: str) -> type:
    """The class named ``"module:Qualified.Name"``."""
    module, _, qual = name.partition(":")
    obj = lookup(module, qual)
    if not isinstance(obj, type):
        raise TypeError(f"{name} is not a class")
    return obj


@functools.lru_cache(maxsize=1024)
def _kind(tp: type) -> str | None:
    """Which library defines the model class ``tp`` (``"pydantic"``, ``"pydantic.v1"``, ``"msgspec"``, ``"attrs"``);
    asked for every result stored (remembered per class)."""
    for base in tp.__mro__:
        full = f"{base.__module__}.{base.__qualname__}"
        if full == _PYDANTIC:
            return "pydantic"
        if full == _PYDANTIC_V1:
            return "pydantic.v1"
        if full == _MSGSPEC:
            return "msgspec"
    if getattr(tp, "__attrs_attrs__", None) is not None:
        return "attrs"
    return None


_JSON_SCALARS = (str, int, bool, type(None))


def _plain_json(value: Any, depth: int = 0) -> bool:
    """Whether ``json.loads(json.dumps(value))`` gives back exactly ``value`` (types included)."""
    tp = type(value)
    if tp in _JSON_SCALARS:
        return True
    if tp is float:
        return value == value and value not in (float("inf"), float("-inf"))
    if depth > 50:
        return False
    if tp is list:
        return all(_plain_json(v, depth + 1) for v in value)
    if tp is dict:
        return all(type(k) is str and _plain_json(v, depth + 1) for k, v in value.items())
    return False


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # fields whose == is not a bool (arrays)
        return False


class ModelSerializer(Serializer):
    """Pydantic models, msgspec structs and attrs instances as ``model.json``.

    The JSON is the library's own wherever it gives back an equal model: Pydantic's ``model_dump_json`` (read back
    with ``Model.model_validate_json``), msgspec's ``msgspec.json.encode`` (``msgspec.json.decode(data,
    type=Struct)``); attrs has no JSON of its own, so its fields are written as a JSON object. The metadata holds
    ``"class"``, the importable ``module:Qualified.Name``.

    Otherwise the model is stored field by field: the fields JSON holds exactly go into ``model.json``, each
    other field into ``fields/<name>/`` with its own serializer (an array as ``.npy``, a nested attrs instance
    as JSON again, the rest pickled), and the model is rebuilt without running its validators (Pydantic's
    ``model_construct``). A class another process cannot import (defined in ``__main__`` or inside a function)
    is pickled whole, and the metadata says why.

    Inside a container (a dict of results) models stay in the container's pickle, so a sweep of thousands of
    small models is one file rather than thousands of directories.
    """

    PLUGIN_NAME = "models.json"
    TYPES = (_PYDANTIC, _PYDANTIC_V1, _MSGSPEC, "builtins.object")
    FORMAT_VERSION = 1
    CONTAINER_INLINE: ClassVar[bool] = True
    # below a library's own claim (a model subclass a plugin knows), above the generic container split
    PRIORITY = -50

    def match(self, value: Any) -> bool:
        return _kind(type(value)) is not None

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        tp = type(value)
        kind = _kind(tp)
        name = class_name(tp)
        if name is None or kind is None:
            meta = PickleSerializer().save(value, directory, ctx)
            reason = f"its class {tp.__module__}.{tp.__qualname__} cannot be imported by another process"
            return {"format": "pickle", "engine": meta["engine"], "reason": reason}
        whole = _whole_json(kind, tp, value)
        if whole is not None:
            (directory / MODEL_FILE).write_bytes(whole)
            return {"format": "json", "kind": kind, "class": name}
        plain: dict[str, Any] = {}
        stored: dict[str, Any] = {}
        for field, field_value in _fields(kind, value).items():
            if _plain_json(field_value):
                plain[field] = field_value
            else:
                stored[field] = ctx.save_child(field_value, directory / FIELDS_DIR / field)
        (directory / MODEL_FILE).write_text(json.dumps(plain, ensure_ascii=False, indent=1))
        return {"format": "fields", "kind": kind, "class": name, "fields": stored}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        fmt = meta.get("format")
        if fmt == "pickle":
            return PickleSerializer().load(directory, {"engine": meta.get("engine", "pickle")}, ctx)
        try:
            tp = import_class(meta["class"])
        except Exception as exc:
            raise ResultCorruptedError(
                f"the model stored at {directory} is of class {meta.get('class')!r}, which cannot be imported "
                f"here ({type(exc).__name__}: {exc})"
            ) from None
        kind = meta.get("kind")
        data = (directory / MODEL_FILE).read_bytes()
        if fmt == "json":
            return _from_whole_json(kind, tp, data)
        if fmt != "fields":
            raise ResultCorruptedError(f"the model stored at {directory} has an unknown format {fmt!r}")
        values = json.loads(data)
        for field, record in meta.get("fields", {}).items():
            values[field] = ctx.load_child(directory / FIELDS_DIR / field, record)
        return _construct(kind, tp, values)


def _whole_json(kind: str, tp: type, value: Any) -> bytes | None:
    """The library's own JSON of ``value`` when it reads back equal, else None."""
    try:
        if kind == "pydantic":
            data = value.model_dump_json(round_trip=True).encode()
        elif kind == "pydantic.v1":
            data = value.json().encode()
        elif kind == "msgspec":
            import msgspec

            data = msgspec.json.encode(value)
        else:
            fields = _fields(kind, value)
            if not all(_plain_json(v) for v in fields.values()):
                return None
            return json.dumps(fields, ensure_ascii=False, indent=1).encode()
        back = _from_whole_json(kind, tp, data)
    except Exception:
        return None
    return data if _equal(back, value) and _equal(_fields(kind, back), _fields(kind, value)) else None


def _from_whole_json(kind: str | None, tp: Any, data: bytes) -> Any:
    if kind == "pydantic":
        return tp.model_validate_json(data)
    if kind == "pydantic.v1":
        return tp.parse_raw(data)
    if kind == "msgspec":
        import msgspec

        return msgspec.json.decode(data, type=tp)
    if kind == "attrs":
        return _construct(kind, tp, json.loads(data))
    raise ResultCorruptedError(f"unknown model kind {kind!r} in a stored result")


def _fields(kind: str, value: Any) -> dict[str, Any]:
    """The field values of a model, by field name (Pydantic's extra fields included)."""
    tp = type(value)
    if kind == "msgspec":
        names: Any = tp.__struct_fields__
    elif kind == "pydantic":
        names = list(tp.model_fields)
        extra = getattr(value, "__pydantic_extra__", None) or {}
        return {**{n: getattr(value, n) for n in names}, **extra}
    elif kind == "pydantic.v1":
        names = list(tp.__fields__)
    else:
        names = [a.name for a in tp.__attrs_attrs__]
    return {n: getattr(value, n) for n in names}


def _construct(kind: str | None, tp: Any, values: dict[str, Any]) -> Any:
    """A model of class ``tp`` holding exactly ``values``, without validators or converters."""
    if kind == "pydantic":
        return tp.model_construct(**values)
    if kind == "pydantic.v1":
        return tp.construct(**values)
    if kind == "msgspec":
        return tp(**values)
    if kind == "attrs":
        obj = tp.__new__(tp)
        for name, v in values.items():
            object.__setattr__(obj, name, v)
        return obj
    raise ResultCorruptedError(f"unknown model kind {kind!r} in a stored result")


@hookimpl
def misen_add_serializers() -> list[type[Serializer]]:
    return [ModelSerializer]
