"""Hashing task arguments: the `Hasher` plugin interface, and `hash_value` for one value.

The canonical encoding itself, and every other part of a task's identity, lives in `misen.identity`.
"""

from __future__ import annotations

from typing import Any

from misen.identity import DIGEST_SIZE, digest, encode_value, qualified_name

__all__ = ["DIGEST_SIZE", "Hasher", "digest", "encode_value", "hash_value", "qualified_name"]


class Hasher:
    """Teaches misen to hash argument values of other types (register through ``misen_add_hashers``).

    Set ``TYPES`` to the fully qualified names of the types handled (``"numpy.dtype"``); subclasses of those
    types match too. The hasher's library is never imported by misen: a type is only met once the user's code
    has imported it. `reduce` returns a value made of built-in types (ints, strings, tuples, dicts…) that stands
    for the argument in the identity; values that reduce equal hash equal.
    """

    #: Registry name, unique among hashers (``"numpy"``).
    PLUGIN_NAME: str = ""
    #: Fully qualified names of the types this hasher handles.
    TYPES: tuple[str, ...] = ()
    #: What names the argument's type in task identities, instead of the type's qualified name (``"jax"``). Set it
    #: when the library moves its classes between modules from one version to the next (private paths such as
    #: ``jax._src...``), so identities survive an upgrade; `reduce` must then tell apart the types it handles.
    #: ``None``: the qualified name of the argument's type.
    TYPE_TAG: str | None = None

    def reduce(self, value: Any) -> Any:
        """A value of built-in types that stands for ``value`` in task identities (deterministic across
        processes and machines)."""
        raise NotImplementedError


def hash_value(value: Any) -> str:
    """Digest of one value's canonical encoding (nested tasks by their identity)."""
    out: list[Any] = []
    encode_value(value, out)
    return digest(b"".join(p if isinstance(p, bytes) else p._id_bytes for p in out))
