"""Serializer for pytrees of JAX arrays (model parameters, optimizer state): one ``.npy`` per array leaf and the
tree's structure as JSON, so the stored tree can be read back with NumPy and ``json`` alone.

Nodes understood: dicts with string or integer keys, lists, tuples, ``None``, and namedtuples of an importable
class (Optax's states are namedtuples). Leaves: JAX arrays (each stored like a lone `jax.Array`) and plain JSON
values (numbers, strings, booleans). A tree with anything else (a Flax ``FrozenDict``, a dataclass, a NumPy array)
is declined and stored by misen's generic container serializer, which still stores each JAX array as ``.npy``.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from misen.errors import ResultCorruptedError
from misen.serializer import LoadContext, SaveContext, Serializer

from misen_serializers_jax.arrays import ARRAY_TYPES, ArraySerializer

__all__ = ["PytreeSerializer"]

TREE_FILE = "tree.json"
_SCALARS = (bool, int, float, str)
_SCALAR_SET = frozenset((*_SCALARS, type(None)))
_MAX_DEPTH = 64


@functools.cache
def _is_array_type(tp: type) -> bool:
    return any(f"{b.__module__}.{b.__qualname__}" in ARRAY_TYPES for b in tp.__mro__)


def _is_array(value: Any) -> bool:
    return _is_array_type(type(value))


def _is_namedtuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


def _namedtuple_class(value: Any) -> str | None:
    """``module:qualname`` of a namedtuple's class when another process can import it, else None."""
    cls = type(value)
    if not (isinstance(value, tuple) and hasattr(cls, "_fields")):
        return None
    if "<" in cls.__qualname__ or cls.__module__ == "__main__":
        return None
    return f"{cls.__module__}:{cls.__qualname__}"


def _scan(value: Any, depth: int = 0) -> tuple[bool, bool]:
    """(only understood nodes and leaves, at least one JAX array)."""
    if value is None or type(value) in _SCALARS:
        return True, False
    if _is_array(value):
        return True, True
    if depth > _MAX_DEPTH:
        return False, False
    if type(value) is dict:
        if not all(type(k) in (str, int) for k in value):
            return False, False
        items: Any = value.values()
    elif type(value) in (list, tuple) or _namedtuple_class(value) is not None:
        items = value
    else:
        return False, False
    if set(map(type, items)) <= _SCALAR_SET:  # a long list of numbers is screened in C, not item by item
        return True, False
    found = False
    for item in items:
        ok, has = _scan(item, depth + 1)
        if not ok:
            return False, False
        found = found or has
    return True, found


class _Writer:
    def __init__(self, directory: Path, ctx: SaveContext) -> None:
        self.directory = directory
        self.ctx = ctx
        self.leaves: list[dict[str, Any]] = []

    def node(self, value: Any) -> Any:
        if value is None or type(value) in _SCALARS:
            return {"value": value}
        if _is_array(value):
            index = len(self.leaves)
            leaf_dir = self.directory / "leaves" / str(index)
            leaf_dir.mkdir(parents=True)
            self.leaves.append(ArraySerializer().save(value, leaf_dir, self.ctx))
            return {"leaf": index}
        if type(value) is dict:
            return {"dict": [[k, self.node(v)] for k, v in value.items()]}
        if type(value) is list:
            return {"list": [self.node(v) for v in value]}
        if type(value) is tuple:
            return {"tuple": [self.node(v) for v in value]}
        return {
            "namedtuple": _namedtuple_class(value),
            "fields": [[f, self.node(v)] for f, v in value._asdict().items()],
        }


def _build(node: dict[str, Any], load_leaf: Any, where: Path) -> Any:
    if "value" in node:
        return node["value"]
    if "leaf" in node:
        return load_leaf(node["leaf"])
    if "dict" in node:
        return {k: _build(v, load_leaf, where) for k, v in node["dict"]}
    if "list" in node:
        return [_build(v, load_leaf, where) for v in node["list"]]
    if "tuple" in node:
        return tuple(_build(v, load_leaf, where) for v in node["tuple"])
    if "namedtuple" in node:
        module, _, qualname = node["namedtuple"].partition(":")
        try:
            cls: Any = importlib.import_module(module)
            for part in qualname.split("."):
                cls = getattr(cls, part)
        except (ImportError, AttributeError) as exc:
            raise ResultCorruptedError(
                f"the pytree at {where} holds a {module}.{qualname}, which cannot be imported here ({exc})"
            ) from None
        return cls(**{f: _build(v, load_leaf, where) for f, v in node["fields"]})
    raise ResultCorruptedError(f"the pytree at {where} has a node misen does not know: {sorted(node)}")


class PytreeSerializer(Serializer):
    """Pytrees of JAX arrays: nested dicts, lists, tuples and namedtuples (Flax parameters, Optax state).

    ``tree.json`` describes the structure (dict keys in order, namedtuple classes by importable name, plain
    values inline) and names leaf ``i`` for the array stored in ``leaves/i/array.npy``; the array metadata (dtype,
    shape) is in ``tree.json`` too. Loading rebuilds the same structure, with the same container types, and
    puts each array on JAX's default device.
    """

    PLUGIN_NAME = "jax.pytree"
    TYPES = ("builtins.dict", "builtins.list", "builtins.tuple")
    FORMAT_VERSION = 1
    # above the generic container split, so a parameter tree keeps its JSON structure
    PRIORITY = 10

    def match(self, value: Any) -> bool:
        # only the plain containers a pytree is made of (a dict subclass such as a SciPy dok matrix is not one)
        if "jax" not in sys.modules or (type(value) not in (dict, list, tuple) and not _is_namedtuple(value)):
            return False
        if not value:
            return False
        ok, has_array = _scan(value)
        return ok and has_array

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        writer = _Writer(directory, ctx)
        tree = writer.node(value)
        with open(directory / TREE_FILE, "w") as f:
            json.dump({"tree": tree, "leaves": writer.leaves}, f, sort_keys=True, allow_nan=True)
        return {"leaves": len(writer.leaves)}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        with open(directory / TREE_FILE) as f:
            stored = json.load(f)
        leaves = stored["leaves"]
        array = ArraySerializer()

        def load_leaf(index: int) -> Any:
            if not isinstance(index, int) or not 0 <= index < len(leaves):
                raise ResultCorruptedError(f"the pytree at {directory} refers to a missing leaf {index!r}")
            return array.load(directory / "leaves" / str(index), leaves[index], ctx)

        return _build(stored["tree"], load_leaf, directory)
