"""The plugin manager and the registries it fills: executors, workspaces, serializers and hashers by name.

Entry points in the ``misen`` group are read (metadata only, through a per-user cache: `misen._installed`) and
their modules imported the first time a registry is needed; ``import misen`` imports no plugin. ``MISEN_DISABLE_PLUGINS`` (comma-separated entry-point
names) switches plugins off, and ``MISEN_NO_ENTRY_POINTS=1`` keeps only the built-ins.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from misen import _installed, hookspecs
from misen.errors import MisenError, PluginNotFoundError
from misen.providers import install_hint, provider_of

if TYPE_CHECKING:
    from misen.environment import Environment
    from misen.executor import Executor
    from misen.hashing import Hasher
    from misen.serializer import Serializer
    from misen.workspace import Workspace

__all__ = ["Lazy", "PluginInfo", "Registry", "lazy_exports", "plugin_manager"]

ENTRY_POINT_GROUP = "misen"

BUILTIN_MODULES = (
    "misen._builtin.engine",
    "misen._builtin.in_process",
    "misen._builtin.threads",
    "misen._builtin.memory",
    "misen._builtin.stdlib",
    "misen._builtin.models",
)


class Lazy:
    """A class a registration hook names without importing it (executors, workspaces and environments): its
    module is imported the first time the class is asked for by name (`Registry.get`), so a run imports only the
    backends it uses.

    ``Lazy("slurm", "misen_executor_slurm.executor:SlurmExecutor")``; ``aliases`` as the class's ``ALIASES``. The
    names are checked against the class once it is imported.
    """

    __slots__ = ("ALIASES", "PLUGIN_NAME", "target")

    def __init__(self, name: str, target: str, aliases: Iterable[str] = ()) -> None:
        self.PLUGIN_NAME = name
        self.target = target
        self.ALIASES = tuple(aliases)

    def __repr__(self) -> str:
        return f"Lazy({self.PLUGIN_NAME!r}, {self.target!r})"

    def load(self, kind: str) -> Any:
        """The class, imported; raises `MisenError` if it cannot be, or if its names are not the ones given."""
        try:
            obj = _installed.load(self.target)
        except Exception as exc:
            raise MisenError(
                f"{kind} {self.PLUGIN_NAME!r} ({self.target}) failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        names = (getattr(obj, "PLUGIN_NAME", None), tuple(getattr(obj, "ALIASES", ())))
        if names != (self.PLUGIN_NAME, self.ALIASES):
            raise MisenError(
                f"{kind} {self.target} is registered as {self.PLUGIN_NAME!r} (aliases {list(self.ALIASES)}) but its "
                f"class says {names[0]!r} (aliases {list(names[1])}): make the Lazy entry and the class agree"
            )
        return obj


def lazy_exports(package: str, where: dict[str, str]) -> Any:
    """A module ``__getattr__`` for a plugin package whose public names live in submodules (``{name: submodule}``),
    imported on first use: importing the package, as registering its hooks does, then imports none of them.

    ``__getattr__ = lazy_exports(__name__, {"SerialExecutor": "executor"})`` in the package's ``__init__.py``.
    """

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__


@attrs.frozen
class PluginInfo:
    """One registered class, for ``misen plugins``."""

    kind: str
    name: str
    obj: Any
    module: str
    distribution: str
    version: str


class Registry:
    """Dispatch tables built once from the registration hooks."""

    def __init__(self, pm: pluggy.PluginManager, dists: dict[str, tuple[str, str]] | None = None) -> None:
        self.pm = pm
        self._dists_cache = dists
        self._tables: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        #: Argument encoders by type, resolved once per type against this registry's hashers (`misen.identity`).
        self.encoders: dict[type, Any] = {}
        #: Serializer dispatch by type (`misen.serializer`), filled as types are met.
        self.serializers_by_type: dict[type, list[Any]] = {}
        self._memos: dict[str, Any] = {}
        self._hasher_table: dict[str, Hasher] | None = None
        self._serializer_tables: tuple[dict[str, Any], dict[str, list[Any]]] | None = None

    def _table(self, kind: str) -> dict[str, Any]:
        table = self._tables.get(kind)
        if table is not None:
            return table
        with self._lock:
            hook = {
                "executor": self.pm.hook.misen_add_executors,
                "workspace": self.pm.hook.misen_add_workspaces,
                "serializer": self.pm.hook.misen_add_serializers,
                "hasher": self.pm.hook.misen_add_hashers,
                "environment": self.pm.hook.misen_add_environments,
            }[kind]
            table = {}
            for answer in hook():
                for obj in answer or ():
                    name = getattr(obj, "PLUGIN_NAME", "")
                    if not name:
                        raise MisenError(f"{kind} {_describe(obj)} has no PLUGIN_NAME")
                    names = [name, *getattr(obj, "ALIASES", ())]
                    for n in names:
                        if n in table and table[n] is not obj:
                            raise MisenError(
                                f"two {kind}s are registered as {n!r}: {_describe(table[n])} and {_describe(obj)}"
                            )
                        table[n] = obj
            self._tables[kind] = table
            return table

    def entries(self, kind: str) -> dict[str, Any]:
        """Name (and alias) → registered class, or `Lazy` entry not imported yet; both carry ``PLUGIN_NAME``."""
        return self._table(kind)

    def _loaded(self, kind: str, only: Any = None) -> dict[str, Any]:
        """The table with its `Lazy` entries imported (``only``: just that one)."""
        table = self._table(kind)
        pending = [
            obj
            for obj in dict.fromkeys(table.values())
            if isinstance(obj, Lazy) and (only is None or obj is only)
        ]
        for lazy in pending:
            try:
                cls = lazy.load(kind)
            except MisenError as exc:
                if only is not None:
                    raise
                # Listing every backend (`misen plugins`): a broken one is reported and left out, like a plugin
                # module that fails to import.
                print(f"misen: {exc}; it is skipped", file=sys.stderr)
                cls = None
            with self._lock:
                for n, obj in list(table.items()):
                    if obj is lazy:
                        if cls is None:
                            del table[n]
                        else:
                            table[n] = cls
        return table

    def executors(self) -> dict[str, type[Executor]]:
        return self._loaded("executor")

    def workspaces(self) -> dict[str, type[Workspace]]:
        return self._loaded("workspace")

    def serializers(self) -> list[type[Serializer]]:
        return list(dict.fromkeys(self._loaded("serializer").values()))

    def hashers(self) -> list[Hasher]:
        return list({id(h): h for h in self._loaded("hasher").values()}.values())

    def memo(self, name: str, factory: Any) -> Any:
        """A table derived from this registry, made by ``factory()`` on first use and kept as long as the registry
        (e.g. what the container serializer learnt about which types hold arrays)."""
        value = self._memos.get(name)
        if value is None:
            with self._lock:
                value = self._memos.get(name)
                if value is None:
                    value = self._memos[name] = factory()
        return value

    def hasher_table(self) -> dict[str, Hasher]:
        """Qualified type name → the registered hasher that claims it (the first registered wins)."""
        table = self._hasher_table
        if table is None:
            table = {}
            for hasher in self.hashers():
                for name in hasher.TYPES:
                    table.setdefault(name, hasher)
            self._hasher_table = table
        return table

    def serializer_tables(self) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        """``(instance by PLUGIN_NAME, instances claiming each qualified type name, best first)``."""
        tables = self._serializer_tables
        if tables is None:
            by_name: dict[str, Any] = {}
            claims: dict[str, list[Any]] = {}
            for cls in self.serializers():
                inst = cls()
                by_name[cls.PLUGIN_NAME] = inst
                for tname in cls.TYPES:
                    claims.setdefault(tname, []).append(inst)
            for lst in claims.values():
                lst.sort(key=lambda s: -s.PRIORITY)
            tables = self._serializer_tables = (by_name, claims)
        return tables

    def environments(self) -> dict[str, type[Environment]]:
        return self._loaded("environment")

    def get(self, kind: str, name: str) -> Any:
        table = self._table(kind)
        normalized = name.strip().lower()
        for candidate in (normalized, normalized.replace("_", "-")):
            if candidate in table:
                found = table[candidate]
                return self._loaded(kind, found)[candidate] if isinstance(found, Lazy) else found
        installed = ", ".join(sorted({getattr(v, "PLUGIN_NAME", k) for k, v in table.items()})) or "none"
        provider = provider_of(kind, normalized)
        hint = f"; install it with {install_hint(provider)}" if provider else ""
        raise PluginNotFoundError(f"unknown {kind} type {name!r} (installed: {installed}){hint}")

    def _dists(self) -> dict[str, tuple[str, str]]:
        # Reading every installed distribution's metadata is slow: only `misen plugins` needs it.
        if self._dists_cache is None:
            self._dists_cache = _top_level_dists()
        return self._dists_cache

    def distribution_of(self, module: str) -> tuple[str, str]:
        """``(distribution, version)`` that provides the import package of ``module`` (``("?", "?")`` if unknown)."""
        return self._dists().get(module.split(".")[0], ("?", "?"))

    def infos(self) -> list[PluginInfo]:
        rows = []
        for kind in ("executor", "workspace", "serializer", "hasher", "environment"):
            seen = set()
            for name, obj in sorted(self._loaded(kind).items()):
                if id(obj) in seen or name != getattr(obj, "PLUGIN_NAME", name):
                    continue
                seen.add(id(obj))
                module = getattr(obj, "__module__", type(obj).__module__)
                dist, version = self.distribution_of(module)
                rows.append(PluginInfo(kind, name, obj, module, dist, version))
        return rows


def _describe(obj: Any) -> str:
    if isinstance(obj, Lazy):
        return obj.target.replace(":", ".")
    tp = obj if isinstance(obj, type) else type(obj)
    return f"{tp.__module__}.{tp.__qualname__}"


def _top_level_dists() -> dict[str, tuple[str, str]]:
    from importlib import metadata

    found: dict[str, tuple[str, str]] = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name", "")
        if not name.startswith("misen"):
            continue
        top = name.replace("-", "_")
        if name == "misen-core":
            # The import package `misen` is misen-core's, not the meta-package's.
            found["misen"] = (name, dist.version)
            continue
        found.setdefault(top, (name, dist.version))
    return found


def plugin_manager(extra: Iterable[Any] = ()) -> pluggy.PluginManager:
    """A fresh plugin manager with the built-ins, the installed entry points and ``extra`` plugins."""
    pm = pluggy.PluginManager("misen")
    pm.add_hookspecs(hookspecs)
    disabled = {n.strip() for n in os.environ.get("MISEN_DISABLE_PLUGINS", "").split(",") if n.strip()}
    for modname in BUILTIN_MODULES:
        pm.register(importlib.import_module(modname), name=modname.rsplit(".", 1)[1].replace("_", "-"))
    if os.environ.get("MISEN_NO_ENTRY_POINTS") != "1":
        for name, value, dist in _installed.entry_points(ENTRY_POINT_GROUP):
            if name in disabled or value in BUILTIN_MODULES or pm.has_plugin(name):
                continue
            try:
                module = _installed.load(value)
            except Exception as exc:
                print(
                    f"misen: plugin {name!r} from distribution {dist} failed to import "
                    f"({type(exc).__name__}: {exc}); it is skipped",
                    file=sys.stderr,
                )
                continue
            pm.register(module, name=name)
    for plugin in extra:
        pm.register(plugin)
    pm.check_pending()
    return pm
