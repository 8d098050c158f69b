"""Values that cannot be meaningfully stored as a result: open files, sockets, locks, generators, live threads.

pickle refuses them, but dill "succeeds": it stores a file handle that later points at an arbitrary file
descriptor, a lock that no longer locks anything, a generator frozen mid-way. misen refuses them instead, naming
the type, whatever container they hide in.
"""

from __future__ import annotations

import io
import socket
import threading
import types
import weakref
from typing import Any

from misen.errors import MisenError

__all__ = ["UnstorableValueError", "guarded", "unstorable_kind"]


class UnstorableValueError(MisenError, TypeError):
    """A task returned (or holds in its result) something that cannot be stored: the type is named."""


_LOCK_TYPES: tuple[type, ...] = (type(threading.Lock()), type(threading.RLock()))
_KEEPABLE_IO = (io.BytesIO, io.StringIO)


def unstorable_kind(obj: Any) -> str | None:
    """What ``obj`` is when it cannot be stored meaningfully (``"an open file"``), else ``None``."""
    if isinstance(obj, io.IOBase) and not isinstance(obj, _KEEPABLE_IO):
        return "a file object"
    if isinstance(obj, socket.socket):
        return "a socket"
    if isinstance(obj, _LOCK_TYPES) or isinstance(obj, threading.Condition | threading.Semaphore | threading.Event):
        return "a lock"
    if isinstance(obj, types.GeneratorType | types.CoroutineType | types.AsyncGeneratorType):
        return "a generator"
    if isinstance(obj, threading.Thread):
        return "a thread"
    module = type(obj).__module__ or ""
    if module.startswith("multiprocessing") and type(obj).__name__ in ("Lock", "RLock", "Semaphore", "Process"):
        return "a lock" if type(obj).__name__ != "Process" else "a process"
    return None


def _refuse(obj: Any, kind: str) -> UnstorableValueError:
    tp = type(obj)
    return UnstorableValueError(
        f"cannot store a result of type {tp.__module__}.{tp.__qualname__} (or one holding it): {kind} would not "
        "mean the same thing when loaded later; return the data it gives access to (the file's contents or path, "
        "the generator's items as a list) instead"
    )


def guarded(base: type) -> type:
    """A subclass of the pickler class ``base`` that refuses unstorable values (`unstorable_kind`)."""
    cached = _GUARDED.get(base)
    if cached is not None:
        return cached
    parent_override = getattr(base, "reducer_override", None)

    class GuardedPickler(base):  # type: ignore[misc, valid-type]
        def reducer_override(self, obj: Any) -> Any:
            kind = unstorable_kind(obj)
            if kind is not None:
                raise _refuse(obj, kind)
            if parent_override is not None:
                return parent_override(self, obj)
            return NotImplemented

    GuardedPickler.__name__ = GuardedPickler.__qualname__ = f"Guarded{base.__name__}"
    _GUARDED[base] = GuardedPickler
    return GuardedPickler


_GUARDED: weakref.WeakKeyDictionary[type, type] = weakref.WeakKeyDictionary()
