"""How task functions travel to worker processes: by import path when possible, by value (dill) otherwise.

A function defined in a module run with ``python -m pkg.mod`` lives in ``__main__`` in the parent, but a worker
imports it as ``pkg.mod`` (where the ``if __name__ == "__main__"`` block does not run).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["function_reference", "lookup", "module_name_of", "resolve_function"]


def module_name_of(fn: Any) -> str | None:
    """The importable module name of ``fn``, mapping ``__main__`` to the module ``python -m`` ran."""
    mod = getattr(fn, "__module__", None)
    if mod == "__main__":
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        mod = getattr(spec, "name", None)
    return mod


def lookup(module: str, qualname: str) -> Any:
    """The object named ``qualname`` (dotted, for nested classes) in ``module``, imported; raises what the import
    or the attribute lookup raises."""
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def function_reference(fn: Callable[..., Any]) -> tuple[str, ...]:
    qualname = getattr(fn, "__qualname__", "")
    mod = module_name_of(fn)
    if mod and "<locals>" not in qualname and "<lambda>" not in qualname:
        try:
            if lookup(mod, qualname) is fn or getattr(fn, "__module__", None) == "__main__":
                return ("ref", mod, qualname)
        except Exception:
            pass
    import dill

    return ("dill", dill.dumps(fn, recurse=True))  # type: ignore[return-value]


def resolve_function(ref: tuple[Any, ...]) -> Callable[..., Any]:
    if ref[0] == "ref":
        return lookup(ref[1], ref[2])  # type: ignore[no-any-return]
    import dill

    return dill.loads(ref[1])  # type: ignore[no-any-return]
