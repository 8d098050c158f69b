"""Serializer and hasher for SymPy objects: expressions (every `sympy.Basic`) and matrices, as ``srepr`` text.

``srepr`` is SymPy's exact textual form (``Add(Symbol('x', positive=True), Integer(1))``): SymPy documents that
evaluating it with SymPy's names gives back an equal object. SymPy is imported inside the methods only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from misen.errors import ResultCorruptedError
from misen.hashing import Hasher
from misen.serializer import LoadContext, SaveContext, Serializer
from misen.stdlib import PickleSerializer

__all__ = ["SympyHasher", "SympySerializer", "from_srepr"]

TYPES = (
    "sympy.core.basic.Basic",
    "sympy.matrices.matrixbase.MatrixBase",  # SymPy >= 1.13
    "sympy.matrices.matrices.MatrixBase",  # SymPy 1.12
)
_NAMESPACE: dict[str, Any] = {}


def from_srepr(text: str) -> Any:
    """The SymPy object ``text`` (``srepr`` output) describes, evaluated with SymPy's public names only."""
    if not _NAMESPACE:
        namespace: dict[str, Any] = {}
        exec("from sympy import *", namespace)
        namespace["__builtins__"] = {}
        _NAMESPACE.update(namespace)
    return eval(text, dict(_NAMESPACE))


def _same(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


class SympySerializer(Serializer):
    """SymPy expressions, numbers, symbols, relations, sets and matrices (mutable and immutable).

    Stored as ``expr.txt``, the ``srepr`` text, checked at save time to read back equal and of the same class.
    Objects for which it does not (a user-defined ``Basic`` subclass SymPy's names do not include) are pickled,
    and the metadata says why. Loading evaluates the text with SymPy's public names and no built-ins: like a
    pickle, only load workspaces you trust.
    """

    PLUGIN_NAME = "sympy.srepr"
    TYPES = TYPES
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import sympy

        text = sympy.srepr(value)
        try:
            ok = _same(from_srepr(text), value)
            reason = "its srepr text reads back as a different object"
        except Exception as exc:
            ok = False
            reason = f"its srepr text does not read back ({type(exc).__name__}: {exc})"
        if ok:
            (directory / "expr.txt").write_text(text, encoding="utf-8")
            return {"format": "srepr", "class": type(value).__name__}
        meta = PickleSerializer().save(value, directory, ctx)
        return {"format": "pickle", "engine": meta["engine"], "reason": reason}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        if meta.get("format") == "pickle":
            return PickleSerializer().load(directory, {"engine": meta.get("engine", "pickle")}, ctx)
        text = (directory / "expr.txt").read_text(encoding="utf-8")
        try:
            return from_srepr(text)
        except Exception as exc:
            raise ResultCorruptedError(
                f"the SymPy expression stored at {directory} does not read back ({type(exc).__name__}: {exc})"
            ) from None


class SympyHasher(Hasher):
    """SymPy expressions and matrices as task arguments (a model's equation, a symbolic kernel), by their
    ``srepr`` text: symbols' assumptions count, and a mutable matrix hashes apart from an immutable one."""

    PLUGIN_NAME = "sympy"
    TYPES = TYPES

    def reduce(self, value: Any) -> Any:
        import sympy

        return sympy.srepr(value)
