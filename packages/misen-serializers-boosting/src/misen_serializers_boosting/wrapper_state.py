"""The parameters and fitted attributes of a scikit-learn style wrapper, as JSON where JSON can hold them.

``wrapper.json`` holds ``{"class": "module:qualname", "params": ..., "state": ...}`` with NumPy arrays and scalars,
tuples, ``OrderedDict``/``defaultdict`` and scikit-learn's ``LabelEncoder`` tagged so they come back with their
type. A wrapper whose parameters hold something else (a callable objective, a callback object) is written to
``wrapper.pkl`` with pickle instead, and the metadata says so: the model file itself stays the library's own.
"""

from __future__ import annotations

import collections
import json
import pickle
from pathlib import Path
from typing import Any

from misen.errors import ResultCorruptedError
from misen.serializer import class_reference, import_reference

__all__ = ["NotJsonError", "read_wrapper", "write_wrapper"]

WRAPPER_JSON = "wrapper.json"
WRAPPER_PICKLE = "wrapper.pkl"
_PLAIN = (type(None), bool, int, float, str)
_FACTORIES = {"dict": dict, "list": list, "OrderedDict": collections.OrderedDict}


class NotJsonError(Exception):
    pass


def encode(value: Any) -> Any:
    """``value`` as JSON-compatible data with type tags; raises ``NotJsonError`` for anything else."""
    if type(value) in _PLAIN:
        return value
    if type(value) is list:
        return [encode(v) for v in value]
    if type(value) is tuple:
        return {"tuple": [encode(v) for v in value]}
    if type(value) in (dict, collections.OrderedDict, collections.defaultdict):
        tag: dict[str, Any] = {"dict": [[encode(k), encode(v)] for k, v in value.items()]}
        if type(value) is collections.OrderedDict:
            tag["kind"] = "OrderedDict"
        elif isinstance(value, collections.defaultdict):
            factory = getattr(value.default_factory, "__name__", None)
            if factory not in _FACTORIES or _FACTORIES[factory] is not value.default_factory:
                raise NotJsonError(f"defaultdict({value.default_factory!r})")
            tag["kind"], tag["factory"] = "defaultdict", factory
        return tag
    module = type(value).__module__
    if module == "numpy":
        import numpy as np

        if isinstance(value, np.ndarray) and type(value) is np.ndarray and value.dtype.kind in "biufcUSO":
            return {"ndarray": encode(value.tolist()), "dtype": value.dtype.str, "shape": list(value.shape)}
        if isinstance(value, np.generic) and value.dtype.kind in "biufUS":
            return {"npscalar": value.item(), "dtype": value.dtype.str}
    if f"{module}.{type(value).__qualname__}".startswith("sklearn.preprocessing._label.LabelEncoder"):
        return {"label_encoder": encode(getattr(value, "classes_", None))}
    raise NotJsonError(type(value).__qualname__)


def decode(value: Any) -> Any:
    """The inverse of `encode`."""
    if type(value) is list:
        return [decode(v) for v in value]
    if type(value) is not dict:
        return value
    if "tuple" in value:
        return tuple(decode(v) for v in value["tuple"])
    if "dict" in value:
        pairs = [(_key(decode(k)), decode(v)) for k, v in value["dict"]]
        kind = value.get("kind")
        if kind == "OrderedDict":
            return collections.OrderedDict(pairs)
        if kind == "defaultdict":
            return collections.defaultdict(_FACTORIES[value["factory"]], pairs)
        return dict(pairs)
    import numpy as np

    if "ndarray" in value:
        dtype = np.dtype(value["dtype"])
        return np.array(decode(value["ndarray"]), dtype=dtype).reshape(value["shape"])
    if "npscalar" in value:
        return np.dtype(value["dtype"]).type(value["npscalar"])
    if "label_encoder" in value:
        from sklearn.preprocessing import LabelEncoder

        encoder = LabelEncoder()
        classes = decode(value["label_encoder"])
        if classes is not None:
            encoder.classes_ = classes
        return encoder
    raise ResultCorruptedError(f"unknown tag in a stored wrapper: {sorted(value)}")


def _key(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def write_wrapper(directory: Path, wrapper: Any, params: dict[str, Any], state: dict[str, Any]) -> str:
    """Write the class of ``wrapper`` (refused when another process could not import it), its parameters and its
    fitted state; return ``"json"`` or ``"pickle"``."""
    cls = class_reference(wrapper, what="model class")
    try:
        body = {"class": cls, "params": encode(params), "state": encode(state)}
    except NotJsonError:
        with open(directory / WRAPPER_PICKLE, "wb") as f:
            pickle.dump({"class": cls, "params": params, "state": state}, f, protocol=5)
        return "pickle"
    with open(directory / WRAPPER_JSON, "w") as f:
        json.dump(body, f, sort_keys=True, allow_nan=True)
    return "json"


def read_wrapper(directory: Path, engine: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """``(class, params, state)`` as `write_wrapper` stored them."""
    if engine == "pickle":
        with open(directory / WRAPPER_PICKLE, "rb") as f:
            body = pickle.load(f)
        return import_reference(body["class"]), body["params"], body["state"]
    with open(directory / WRAPPER_JSON) as f:
        body = json.load(f)
    return import_reference(body["class"]), decode(body["params"]), decode(body["state"])
