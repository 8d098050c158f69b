"""The `Serializer` interface, the type dispatch over registered serializers, and the result format.

A stored result is a directory: the serializer's own files plus ``manifest.json``, which records the serializer
(``PLUGIN_NAME`` and ``FORMAT_VERSION``), its metadata, and the size and checksum (XXH3-128) of every file. The
result hash is a digest of that record, so equal results are stored once and a result that changed on disk is
detected on load.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, ClassVar

from misen import preview as _preview
from misen._pickling import lookup
from misen.errors import MisenError, PluginNotFoundError, ResultCorruptedError, SerializerMissingError
from misen.integrity import (
    ALWAYS_CHECK_BYTES,
    DIGEST_FIELD,
    ResultDamagedError,
    check_files,
    damaged_by_loader,
    file_digest,
    new_digest,
    record_written,
)
from misen.providers import install_hint, provider_of
from misen.session import current_session

__all__ = [
    "LoadContext",
    "SaveContext",
    "Serializer",
    "class_reference",
    "import_reference",
    "load_result",
    "preview_value",
    "save_result",
    "serializer_for",
]

MANIFEST = "manifest.json"
#: 2: per-file checksums are XXH3-128 (``xxh3``); format 1 manifests (``blake2b``) still load.
RESULT_FORMAT = 2
#: Files up to this size are checksummed on every load; larger ones once per change (see `misen.integrity`).
FULL_CHECK_BYTES = ALWAYS_CHECK_BYTES


class Serializer:
    """Writes values of some types to files in a directory and reads them back.

    Subclass it, set the class attributes, implement `save` and `load`, and register the class through the
    ``misen_add_serializers`` hook (or pass it to ``@meta(serializer=...)`` for one task).
    """

    #: Stable registry name recorded with every stored result (``"numpy.ndarray"``). Never rename it.
    PLUGIN_NAME: ClassVar[str] = ""
    #: Fully qualified names of the types handled (``"numpy.ndarray"``); subclasses match through their MRO.
    TYPES: ClassVar[tuple[str, ...]] = ()
    #: Bump when the on-disk format changes; `load` receives the version a result was written with.
    FORMAT_VERSION: ClassVar[int] = 1
    #: The highest priority wins among serializers claiming the same type.
    PRIORITY: ClassVar[int] = 0
    #: Whether a value of this serializer's types inside a container (a dict, a list) stays inside the
    #: container's pickle (``True``: small values such as NumPy scalars and dtypes, cheaper pickled with the rest)
    #: instead of being stored by this serializer in files of its own (``False``, the default: arrays, frames,
    #: tensors inside a dict of results each get their own files).
    CONTAINER_INLINE: ClassVar[bool] = False

    def match(self, value: Any) -> bool:
        """Whether this serializer takes this particular value (default: every value of its types)."""
        return True

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        """Write ``value`` into the empty ``directory``; return JSON-compatible metadata for `load`."""
        raise NotImplementedError

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        """Read the value back from ``directory``. ``ctx.format_version`` is the version it was saved with."""
        raise NotImplementedError

    def save_small(self, value: Any, limit: int) -> tuple[dict[str, Any], dict[str, bytes]] | None:
        """Optional: what `save` would write, held in memory (``(metadata, {file name: bytes})``), when the files
        add up to at most ``limit`` bytes; ``None`` when they are larger (or unsupported: the default).

        A result given this way is stored inside its task's record instead of a folder of its own
        (`misen.inline`), with the same manifest and result hash. Implement it together with `load_small`.
        """
        return None

    def load_small(self, files: dict[str, bytes], meta: dict[str, Any], ctx: LoadContext) -> Any:
        """Read back a value `save_small` gave, from its files' bytes (already checked against their checksums)."""
        raise NotImplementedError

    def preview(self, value: Any) -> Any:
        """A short look at ``value`` for ``misen report``: a `misen.preview.Preview` (text, HTML or a picture).

        Optional. The default shows standard-library values as text and pictures (figures, PIL images, a
        string naming an image file) as images; override it to show what matters about your type (an
        array's shape and range, a frame's head). Return ``None`` for no preview. It may raise: callers
        catch everything.
        """
        return _preview.default_preview(value, inner=preview_value)


class SaveContext:
    """Given to `Serializer.save`: lets container serializers save their elements with the registry."""

    def __init__(self) -> None:
        #: BLAKE2b digests (``file_digest``'s kind) a serializer computed while writing, by absolute path.
        self.digests: dict[Path, tuple[int, str]] = {}

    def record_digest(self, path: Path, size: int, digest: str) -> None:
        """Tell `save_result` the digest of a file just written (computed alongside the write), so the file is
        not read back to checksum it. Used when ``size`` still matches; a wrong digest makes the result fail its
        checks later, so only record what was computed over exactly the bytes written."""
        self.digests[path.absolute()] = (size, digest)

    def save_child(self, value: Any, directory: Path) -> dict[str, Any]:
        """Save ``value`` into ``directory`` with whatever serializer fits it; return its record."""
        directory.mkdir(parents=True, exist_ok=True)
        ser = serializer_for(value)
        meta = ser.save(value, directory, self)
        return {"serializer": ser.PLUGIN_NAME, "version": ser.FORMAT_VERSION, "meta": meta}


class LoadContext:
    """Given to `Serializer.load`."""

    def __init__(self, format_version: int = 1, mmap: bool = False) -> None:
        self.format_version = format_version
        #: Whether memory-mapping large arrays is welcome (the default for loads from a local workspace).
        self.mmap = mmap

    def load_child(self, directory: Path, record: dict[str, Any]) -> Any:
        ser = serializer_named(record["serializer"])
        ctx = LoadContext(record.get("version", 1), self.mmap)
        _check_version(ser, ctx.format_version)
        return ser.load(directory, record.get("meta", {}), ctx)


def class_reference(value: Any, *, what: str = "class") -> str:
    """``"module:qualname"`` of ``value``'s class, for a serializer that records which class to rebuild on load.

    Refused with a `MisenError` naming the class when another process could not import it: a class defined inside
    a function, or in ``__main__`` (the script that was run). ``what`` names the class in that message
    (``"model class"``).
    """
    cls = type(value)
    if "<locals>" in cls.__qualname__ or cls.__module__ == "__main__":
        raise MisenError(
            f"the {what} {cls.__qualname__} is defined in {cls.__module__}, which another process cannot import; "
            "define it in an importable module"
        )
    return f"{cls.__module__}:{cls.__qualname__}"


def import_reference(name: str, *, what: str = "", advice: str = "") -> Any:
    """The object named ``"module:qualname"`` (as `class_reference` writes it), imported here.

    Where it cannot be imported, a `MisenError`: ``this result is a [what] module.qualname, which cannot be
    imported here (the import's own error)``, then ``advice`` when given (``"make the class importable where the
    result is loaded"``).
    """
    module, _, qualname = name.partition(":")
    try:
        return lookup(module, qualname)
    except (ImportError, AttributeError, ValueError, TypeError) as exc:  # the last two: an empty or relative name
        named = f"{what} {module}.{qualname}" if what else f"{module}.{qualname}"
        tail = f"; {advice}" if advice else ""
        raise MisenError(f"this result is a {named}, which cannot be imported here ({exc}){tail}") from None


def _load_tables() -> tuple[dict[str, Serializer], dict[str, list[Serializer]]]:
    return current_session().registry.serializer_tables()


def serializer_named(name: str) -> Serializer:
    by_name, _ = _load_tables()
    ser = by_name.get(name)
    if ser is None:
        provider = provider_of("library", name)
        hint = install_hint(provider) if provider else "the misen-serializers package that provides it"
        # a result nobody here can read counts as not cached (recomputed), never as an error that stops a run
        raise SerializerMissingError(
            f"this result was written by serializer {name!r}, which is not installed; install {hint} "
            "(see `misen plugins`), or let misen recompute it"
        )
    return ser


def _candidates(tp: type) -> list[Serializer]:
    by_type = current_session().registry.serializers_by_type
    found = by_type.get(tp)
    if found is None:
        _, claims = _load_tables()
        found = []
        for base in tp.__mro__:
            found.extend(claims.get(f"{base.__module__}.{base.__qualname__}", ()))
        # stable: nearest class first, then priority
        found = sorted(dict.fromkeys(found), key=lambda s: -s.PRIORITY) if len(found) > 1 else found
        by_type[tp] = found
    return found


def missing_plugin(tp: type) -> str | None:
    """Why values of type ``tp`` cannot be stored here, or None: ``tp`` belongs to a library whose serializers are
    in a plugin (`misen.providers`, kind ``library``) and no registered serializer claims a type of that plugin's
    libraries. A covered library's types that its plugin does not claim are still pickled."""
    memo = current_session().registry.memo("misen.serializer.missing_plugin", dict)
    if tp in memo:
        return memo[tp]  # type: ignore[no-any-return]
    top = tp.__module__.partition(".")[0]
    requirement = provider_of("library", top)
    message = None
    if requirement is not None:
        claimed = {name.partition(".")[0] for name in _load_tables()[1]}
        if not any(provider_of("library", module) == requirement for module in claimed):
            message = (
                f'install "{requirement}" to store {top}.{tp.__qualname__} results '
                "(or give the task its own serializer with @meta(serializer=...))"
            )
    memo[tp] = message
    return message


def _takes(ser: Serializer, value: Any) -> bool:
    """``ser.match(value)``; a `match` that fails by accident declines the value (a plugin's check never stops a
    store), while misen's own refusals (a missing plugin found inside a container) go through."""
    try:
        return bool(ser.match(value))
    except MisenError:
        raise
    except Exception:
        return False


def serializer_for(value: Any) -> Serializer:
    """The registered serializer for ``value``: by type through the MRO, falling back to pickle, then dill.

    A value of a library whose plugin is not installed is refused instead (`missing_plugin`), with the extra to
    install, rather than pickled behind the user's back.
    """
    missing = missing_plugin(type(value))
    if missing is not None:
        raise PluginNotFoundError(missing)
    for ser in _candidates(type(value)):
        if _takes(ser, value):
            return ser
    by_name, _ = _load_tables()
    for name in ("pickle", "dill"):
        ser = by_name.get(name)
        if ser is not None and ser.match(value):
            return ser
    raise MisenError(f"no serializer can store a value of type {type(value).__qualname__}")


def _as_instance(ser: Any) -> Serializer:
    if isinstance(ser, type):
        return ser()  # type: ignore[no-any-return]
    return ser  # type: ignore[no-any-return]


def _check_version(ser: Serializer, version: int) -> None:
    if version > ser.FORMAT_VERSION:
        raise ResultCorruptedError(
            f"result was written in format version {version} of serializer {ser.PLUGIN_NAME!r}, newer than the "
            f"installed version {ser.FORMAT_VERSION}; upgrade the plugin or recompute the result"
        )


#: Files at least this large are fsynced before their result is published, whatever the durability asked for:
#: a crash could otherwise leave a large file of the right size but wrong content, which is checked by size only.
ALWAYS_FSYNC_BYTES = 8 * 1024 * 1024




class DigestWriter:
    """A binary file that checksums what is written through it, so the file never has to be read back.

    ``with DigestWriter(path, ctx) as f: pickle.dump(value, f)`` records the digest with ``ctx.record_digest``
    when it closes. Seeking back (to rewrite) drops the digest and `save_result` reads the file instead.
    """

    def __init__(self, path: Path, ctx: SaveContext) -> None:
        self.path = path
        self.ctx = ctx
        self._f = open(path, "wb")
        self._h: Any = new_digest()
        self._size = 0

    def write(self, data: Any) -> int:
        n = self._f.write(data)
        if self._h is not None:
            self._h.update(data)
            self._size += len(memoryview(data).cast("B")) if not isinstance(data, bytes | bytearray) else len(data)
        return n

    def tell(self) -> int:
        return self._f.tell()

    def seek(self, pos: int, whence: int = 0) -> int:
        self._h = None
        return self._f.seek(pos, whence)

    def truncate(self, size: int | None = None) -> int:
        self._h = None
        return self._f.truncate(size)

    def flush(self) -> None:
        self._f.flush()

    def __enter__(self) -> DigestWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()
        if self._h is not None and exc[0] is None:
            self.ctx.record_digest(self.path, self._size, self._h.hexdigest())


def save_result(
    value: Any, directory: Path, serializer: Any = None, *, durable: bool = True
) -> tuple[str, dict[str, Any]]:
    """Serialize ``value`` into the empty ``directory`` and write its manifest.

    Returns ``(result_hash, manifest)``; the caller commits the directory atomically. With ``durable`` every file
    is fsynced first; without it only large files are (small ones are fully checksummed on every load, so a crash
    can lose them but never pass off damaged bytes), and the workspace's `~misen.workspace.Workspace.sync` makes the
    rest durable later.
    """
    ser = _as_instance(serializer) if serializer is not None else serializer_for(value)
    directory.mkdir(parents=True, exist_ok=True)
    ctx = SaveContext()
    meta = ser.save(value, directory, ctx)
    files: dict[str, dict[str, Any]] = {}
    synced = False
    for rel, size in _walk_files(directory):
        if rel != MANIFEST:
            path = directory / rel
            known = ctx.digests.get(path.absolute())
            digest = known[1] if known is not None and known[0] == size else file_digest(path)
            files[rel] = {"size": size, DIGEST_FIELD: digest}
            if durable or size >= ALWAYS_FSYNC_BYTES:
                _fsync(path)
                synced = True
    record_written(directory, files, DIGEST_FIELD)  # large files: fsynced above, digests of the bytes written
    body = {
        "format": RESULT_FORMAT,
        "serializer": serializer_name(ser),
        "version": ser.FORMAT_VERSION,
        "meta": meta,
        "files": files,
    }
    result_hash = result_hash_of(body)
    manifest = {**body, "result_hash": result_hash}
    mpath = directory / MANIFEST
    with open(mpath, "w") as f:
        json.dump(manifest, f, sort_keys=True, default=str)
        if durable or synced:
            f.flush()
            os.fsync(f.fileno())
    return result_hash, manifest


#: `result_hash_of`'s encoder, built once: the same bytes as ``json.dumps(body, sort_keys=True, separators=(",",
#: ":"), default=str)``, which every stored result hash was computed from.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def result_hash_of(body: dict[str, Any]) -> str:
    """The result hash of a manifest's body (the manifest without its ``result_hash`` field)."""
    canonical = _CANONICAL.encode(body).encode()
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


def _walk_files(directory: Path) -> list[tuple[str, int]]:
    """``(relative posix path, size)`` of every file under ``directory``, sorted (one scandir per folder)."""
    out: list[tuple[str, int]] = []
    stack = [("", str(directory))]
    while stack:
        prefix, path = stack.pop()
        with os.scandir(path) as it:
            for entry in it:
                rel = prefix + entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append((rel + "/", entry.path))
                elif entry.is_file(follow_symlinks=False):
                    out.append((rel, entry.stat(follow_symlinks=False).st_size))
    out.sort()
    return out


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(directory: Path) -> dict[str, Any]:
    try:
        with open(directory / MANIFEST) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as exc:
        raise ResultDamagedError(directory, MANIFEST, "manifest", f"no readable manifest ({exc})") from None
    if not isinstance(manifest, dict) or "files" not in manifest or "serializer" not in manifest:
        raise ResultDamagedError(directory, MANIFEST, "manifest", "a malformed manifest")
    return manifest


def check_result(
    directory: Path, manifest: dict[str, Any] | None = None, *, full: bool = False
) -> dict[str, Any]:
    """Verify every byte of a stored result against its manifest (`misen.integrity.check_files`).

    Raises `misen.integrity.ResultDamagedError` (a `ResultCorruptedError`) naming the file and the damage.
    ``full`` checksums large files again even when an earlier verification of them is recorded.
    """
    manifest = manifest or read_manifest(directory)
    check_files(directory, manifest, full=full)
    return manifest


def serializer_name(ser: Any) -> str:
    """The name recorded for a serializer: its ``PLUGIN_NAME``, else its qualified class name."""
    tp = ser if isinstance(ser, type) else type(ser)
    return getattr(tp, "PLUGIN_NAME", "") or f"{tp.__module__}.{tp.__qualname__}"


def loader_for(manifest: dict[str, Any], serializer: Any = None, *, mmap: bool = False) -> tuple[Serializer, LoadContext]:
    """The serializer that reads a result with ``manifest`` (the task's own ``serializer`` when the manifest names
    it, else the registered one) and its `LoadContext`; refuses a format newer than the installed serializer."""
    if serializer is not None and serializer_name(serializer) == manifest["serializer"]:
        ser = _as_instance(serializer)
    else:
        ser = serializer_named(manifest["serializer"])
    ctx = LoadContext(manifest.get("version", 1), mmap)
    _check_version(ser, ctx.format_version)
    return ser, ctx


def load_result(directory: Path, *, mmap: bool = True, verify: bool = True, serializer: Any = None) -> Any:
    """Load the value stored in ``directory`` (checked against its manifest first).

    ``serializer`` is the task's own ``@meta(serializer=...)``, used when the manifest names it.
    """
    manifest = read_manifest(directory)
    if verify:
        check_result(directory, manifest)
    ser, ctx = loader_for(manifest, serializer, mmap=mmap)
    try:
        return ser.load(directory, manifest.get("meta", {}), ctx)
    except (MisenError, MemoryError):
        raise
    except Exception as exc:  # any loader failure of bytes that passed their checksums is damage
        raise damaged_by_loader(directory, manifest, manifest["serializer"], exc) from None


def preview_value(value: Any, serializer: Any = None) -> _preview.Preview | None:
    """The preview of ``value`` by the serializer that stores it (or by ``serializer``); ``None`` on any error."""
    try:
        if serializer is None:
            serializer = serializer_for(value)
        elif isinstance(serializer, type):
            serializer = serializer()
        preview = getattr(serializer, "preview", None)
        result = preview(value) if preview is not None else _preview.default_preview(value, inner=preview_value)
        return result if isinstance(result, _preview.Preview) else None
    except Exception:
        return None
