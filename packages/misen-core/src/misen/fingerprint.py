"""Code fingerprints: a digest of a task function's normalized code and of the project code it reaches.

Owns the normalizer (the AST without docstrings, annotations, ``@meta`` and formatting), the walk over the
project's functions, classes and module-level constants, and the per-process caches behind `function_fingerprint`.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import sysconfig
import types
from typing import Any

import attrs

from misen._fingerprint_source import (
    _canonical,
    _chain,
    _digest,
    _Dumper,
    _Source,
    _source,
)
from misen.session import current_session
from misen.taskmeta import meta as _meta_decorator

__all__ = ["ClosureItem", "Fingerprint", "function_fingerprint"]

_MISSING: Any = object()


@attrs.frozen
class ClosureItem:
    """One function, class or module-level constant in a task's code closure.

    Attributes:
        name: Qualified name, e.g. ``my_project.models.train`` or ``my_project.config.LR``; a function defined
            in ``__main__`` run as ``python -m pkg.mod`` is named as in ``pkg.mod``.
        kind: ``"function"``, ``"class"`` or ``"constant"``.
        file: The source file, relative to the working directory when it lies below it (for people; never
            part of a digest).
        line: The first line of the definition (for people; never part of a digest).
        digest: Hex digest of this item's normalized code (or, for a constant without an assignment in the
            source, of its canonical value) alone.
    """

    name: str
    kind: str
    file: str
    line: int
    digest: str


@attrs.frozen
class Fingerprint:
    """The code fingerprint of a task function.

    Attributes:
        digest: 32 hex characters (blake2b, 16 bytes) over the sorted ``(name, kind, digest)`` of all items.
        items: The code closure, sorted by name; includes the task function itself.
    """

    digest: str
    items: tuple[ClosureItem, ...]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able form: ``{"digest": ..., "items": {name: {"kind", "file", "line", "digest"}}}``."""
        return {
            "digest": self.digest,
            "items": {
                i.name: {"kind": i.kind, "file": i.file, "line": i.line, "digest": i.digest}
                for i in self.items
            },
        }

    @staticmethod
    def diff(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
        """What changed between two `as_dict` forms, one human line per item, sorted by name.

        Lines read ``changed: NAME (FILE:LINE)``, ``added: NAME (FILE:LINE)`` or ``removed: NAME (FILE:LINE)``
        (a removed item shows where it was). ``old=None`` (no fingerprint was recorded) lists every item of
        ``new`` as added. Equal fingerprints give an empty list.
        """
        before: dict[str, Any] = (old or {}).get("items", {})
        after: dict[str, Any] = new.get("items", {})
        lines = []
        for name in sorted(set(before) | set(after)):
            a: Any = before.get(name)
            b: Any = after.get(name)
            if a is None:
                lines.append(f"added: {name} ({b['file']}:{b['line']})")
            elif b is None:
                lines.append(f"removed: {name} ({a['file']}:{a['line']})")
            elif a.get("digest") != b.get("digest") or a.get("kind") != b.get("kind"):
                lines.append(f"changed: {name} ({b['file']}:{b['line']})")
        return lines


def function_fingerprint(fn: Any) -> Fingerprint | None:
    """The code fingerprint of ``fn``, computed once per function object per process.

    The fingerprint covers ``fn``'s normalized source and, transitively, the functions, classes (their whole
    bodies) and module-level constants of the project that it references by name, as ``module.attr`` chains,
    through ``from x import y``/``import x.y as z`` (also inside the function) and through closure cells. Code
    of the standard library, of installed distributions (anything under ``site-packages``/``dist-packages``) and
    of misen itself is not walked. A module belongs to the project when it shares the task module's top-level
    package or its file lies outside the standard library and installed distributions.

    Normalization ignores comments, formatting, docstrings, line numbers, argument and return annotations,
    annotations of local variables, and the ``@meta(...)`` decorator (its options enter the identity
    separately). Class-level annotations are kept, because attrs and dataclasses make fields of them.

    What is seen is what the code names: a module passed around whole, ``getattr(mod, name)`` with a computed
    name, or code reached through an object's attributes at run time (``self.model.fit`` of an argument) is not
    followed. A project submodule reached as ``pkg.sub.f``, or imported inside the function, is imported if it
    was not yet, so that the fingerprint does not depend on what happened to be imported before.

    Returns:
        The `Fingerprint`, or ``None`` for callables without readable Python source (builtins, C functions,
        code typed at a bare ``python -c``). It never raises.
    """
    table = _caches().fingerprints
    try:
        return table[fn]
    except KeyError:
        pass
    except TypeError:  # an unhashable callable: compute, don't cache
        return _safe_fingerprint(fn)
    fp = table[fn] = _safe_fingerprint(fn)
    return fp


class _Caches:
    """What fingerprinting learnt in one session: code is read once per session (a fresh session, as in a test,
    reads it again)."""

    def __init__(self) -> None:
        self.fingerprints: dict[Any, Fingerprint | None] = {}
        self.namespaces: dict[int, tuple[dict[str, Any], _Namespace]] = {}
        self.nodes: dict[Any, _Node | None] = {}


def _caches() -> _Caches:
    return current_session().memo("misen.fingerprint", _Caches)  # type: ignore[no-any-return]


def _safe_fingerprint(fn: Any) -> Fingerprint | None:
    try:
        return _fingerprint(fn)
    except Exception:  # it runs inside Task(...): odd input means "no fingerprint", never an error
        return None


# --- the walk --------------------------------------------------------------------------------------------------


@attrs.define(eq=False)
class _Namespace:
    """A module's globals with the module's importable name (``__main__`` mapped to what ``-m`` ran)."""

    name: str
    globals: dict[str, Any]
    file: str | None
    package: str | None


@attrs.define(eq=False)
class _Node:
    """A closure item and the objects it references (``redirect``: the name is really defined elsewhere)."""

    item: ClosureItem | None
    refs: tuple[Any, ...] = ()
    redirect: Any = None


@functools.cache
def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths.get("stdlib"), paths.get("platstdlib"), os.path.dirname(os.__file__)}
    return tuple(os.path.realpath(d) + os.sep for d in dirs if d)


def _module_name(name: str) -> str:
    if name == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        return getattr(spec, "name", None) or name
    return name


def _namespace(g: dict[str, Any]) -> _Namespace:
    table = _caches().namespaces
    hit = table.get(id(g))
    if hit is not None and hit[0] is g:
        return hit[1]
    ns = _Namespace(_module_name(str(g.get("__name__") or "?")), g, g.get("__file__"), g.get("__package__"))
    table[id(g)] = (g, ns)
    return ns


def _in_project(module: str, file: str | None, top: str) -> bool:
    first = module.partition(".")[0]
    if first == top:
        return True
    if first == "misen" or first.startswith("misen_") or not file or file.startswith("<"):
        return False
    return _outside_installed(file)


@functools.lru_cache(maxsize=4096)
def _outside_installed(file: str) -> bool:
    """Whether a source file lies outside the standard library and installed distributions."""
    path = os.path.realpath(file)
    parts = path.split(os.sep)
    return (
        "site-packages" not in parts
        and "dist-packages" not in parts
        and not any(path.startswith(d) for d in _stdlib_dirs())
    )


def _display(file: str) -> str:
    try:
        rel = os.path.relpath(file, os.getcwd())
    except (ValueError, OSError):
        return file
    return file if rel.startswith("..") else rel


def _as_definition(obj: Any) -> Any:
    """The function or class behind ``obj`` (unwrapping methods and ``functools.wraps``), else None."""
    try:
        if isinstance(obj, type):
            return obj
        if isinstance(obj, types.MethodType):
            obj = obj.__func__
        if not isinstance(obj, types.FunctionType) and hasattr(obj, "__wrapped__"):
            obj = inspect.unwrap(obj)
    except Exception:
        return None
    return obj if isinstance(obj, types.FunctionType | type) else None


def _is_meta(decorator: ast.expr, g: dict[str, Any]) -> bool:
    chain = _chain(decorator.func if isinstance(decorator, ast.Call) else decorator)
    if chain is None:
        return False
    obj = g.get(chain[0], _MISSING)
    for attr in chain[1:]:
        if obj is _MISSING:
            break
        try:
            obj = getattr(obj, attr, _MISSING)
        except Exception:
            obj = _MISSING
    if obj is _MISSING:
        return chain[-1] == "meta"
    return obj is _meta_decorator


def _import_project(name: str) -> types.ModuleType | None:
    """``sys.modules[name]``, importing it first when it is project code not imported yet.

    A submodule reached as ``pkg.sub.f`` or imported inside a function may not be imported when the task is
    made; importing it here keeps the fingerprint independent of the order in which modules were imported.
    """
    mod = sys.modules.get(name)
    if mod is not None or not name:
        return mod
    top = name.partition(".")[0]
    try:
        top_mod = sys.modules.get(top)
        origin = (
            getattr(top_mod, "__file__", None)
            if top_mod
            else getattr(importlib.util.find_spec(top), "origin", None)
        )
        if origin and _in_project(top, origin, "\0"):
            return importlib.import_module(name)
    except Exception:  # whatever the module raises: it is just not followed
        pass
    return None


def _module_attr(mod: types.ModuleType, attr: str) -> Any:
    value = mod.__dict__.get(attr, _MISSING)
    if value is _MISSING and hasattr(mod, "__path__"):
        value = _import_project(f"{mod.__name__}.{attr}") or _MISSING
    return value


def _classify(obj: Any, ns: _Namespace, attr: str, rest: tuple[str, ...]) -> Any:
    """Follow ``rest`` through modules from ``obj`` (bound as ``attr`` in ``ns``) to a reference, or None."""
    for a in rest:
        if not isinstance(obj, types.ModuleType):
            break
        ns, attr = _namespace(obj.__dict__), a
        obj = _module_attr(obj, a)
        if obj is _MISSING:
            return None
    if isinstance(obj, types.ModuleType):
        return None  # a module used whole: nothing to pin down
    definition = _as_definition(obj)
    return definition if definition is not None else ("constant", ns, attr)


def _local_imports(node: ast.AST, ns: _Namespace) -> dict[str, tuple[Any, _Namespace, str]]:
    """Names bound by imports inside a function or class body, as (object, owner namespace, name there)."""
    found: dict[str, tuple[Any, _Namespace, str]] = {}
    for n in ast.walk(node):
        if isinstance(n, ast.Import):
            for alias in n.names:
                _import_project(alias.name)
                mod = sys.modules.get(alias.name if alias.asname else alias.name.split(".")[0])
                if mod is not None:
                    found[alias.asname or alias.name.split(".")[0]] = (mod, ns, "")
        elif isinstance(n, ast.ImportFrom):
            try:
                base = importlib.util.resolve_name("." * n.level + (n.module or ""), ns.package)
            except (ImportError, ValueError):
                continue
            mod = _import_project(base)
            if mod is None:
                continue
            for alias in n.names:
                value = _module_attr(mod, alias.name)
                if value is not _MISSING:
                    found[alias.asname or alias.name] = (value, _namespace(mod.__dict__), alias.name)
    return found


def _header_names(node: ast.AST, ns: _Namespace) -> set[str]:
    """Names loaded by what a definition evaluates in its enclosing scope: decorators, defaults, bases."""
    if isinstance(node, ast.ClassDef):
        parts: list[Any] = [*node.bases, *node.keywords, *node.decorator_list]
    elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        parts = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
        if not isinstance(node, ast.Lambda):
            parts += [d for d in node.decorator_list if not _is_meta(d, ns.globals)]
    else:
        parts = []
    return {n.id for p in parts for n in ast.walk(p) if isinstance(n, ast.Name)}


def _scope_globals(src: _Source, node: ast.AST) -> set[str]:
    name = "lambda" if isinstance(node, ast.Lambda) else node.name  # type: ignore[attr-defined]
    out: set[str] = set()
    stack = list(src.tables.get((name, node.lineno), []))  # type: ignore[attr-defined]
    while stack:
        table = stack.pop()
        out.update(s.get_name() for s in table.get_symbols() if s.is_global() and s.is_referenced())
        stack.extend(table.get_children())
    return out


def _definition_node(
    kind: str, name: str, file: str, nodes: list[Any], src: _Source, ns: _Namespace
) -> _Node:
    dumper = _Dumper(lambda d: _is_meta(d, ns.globals))
    allowed: set[str] = set()
    local: dict[str, tuple[Any, _Namespace, str]] = {}
    for n in nodes:
        dumper.where = "module"
        dumper.node(n)
        allowed |= _scope_globals(src, n) | _header_names(n, ns)
        local.update(_local_imports(n, ns))
    refs = []
    for chain in sorted(dumper.chains):
        root = chain[0]
        if root in allowed and root in ns.globals:
            ref = _classify(ns.globals[root], ns, root, chain[1:])
        elif root in local and root not in allowed:
            obj, owner, attr = local[root]
            ref = _classify(obj, owner, attr or root, chain[1:])
        else:
            continue
        if ref is not None:
            refs.append(ref)
    line = min(getattr(n, "lineno", 0) for n in nodes)
    if not isinstance(nodes[0], ast.ClassDef | ast.Lambda):
        line = min([line, *(d.lineno for n in nodes for d in n.decorator_list)])
    item = ClosureItem(name, kind, _display(file), line, _digest(kind, "".join(dumper.out)))
    return _Node(item, tuple(refs))


def _function_node(fn: types.FunctionType) -> _Node | None:
    code = fn.__code__
    ns = _namespace(fn.__globals__)
    src = _source(code.co_filename, fn.__globals__)
    nodes = src.defs.get((code.co_name, code.co_firstlineno)) if src else None
    if not nodes or src is None:
        return None
    node = _definition_node("function", f"{ns.name}.{fn.__qualname__}", code.co_filename, nodes, src, ns)
    cells = []
    for var, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell (a name assigned after the function was made)
            continue
        definition = _as_definition(value)
        if definition is not None:
            cells.append(definition)
        elif (text := _canonical(value)) is not None:
            cells.append(("value", f"{node.item.name}.<closure>.{var}", text, ns))  # type: ignore[union-attr]
    node.refs += tuple(cells)
    return node


def _class_node(cls: type) -> _Node | None:
    mod = sys.modules.get(cls.__module__)
    file = getattr(mod, "__file__", None)
    if mod is None or not file:
        return None
    ns = _namespace(mod.__dict__)
    src = _source(file, ns.globals)
    nodes = src.classes.get(cls.__qualname__) if src else None
    if not nodes or src is None:
        return None
    # A class defined twice under one name: the last definition is the one that usually wins.
    return _definition_node("class", f"{ns.name}.{cls.__qualname__}", file, nodes[-1:], src, ns)


def _constant_node(ns: _Namespace, attr: str) -> _Node | None:
    src = _source(ns.file, ns.globals) if ns.file else None
    stmts = src.bindings.get(attr, []) if src else []
    assigns = [s for s in stmts if not isinstance(s, ast.Import | ast.ImportFrom)]
    if not assigns and stmts:
        last = stmts[-1]
        if isinstance(last, ast.ImportFrom):  # `from .config import LR`: the constant lives over there
            base = importlib.util.resolve_name("." * last.level + (last.module or ""), ns.package)
            mod = _import_project(base)
            for alias in last.names:
                if (alias.asname or alias.name) == attr and mod is not None:
                    return _Node(None, redirect=("constant", _namespace(mod.__dict__), alias.name))
        return None
    name = f"{ns.name}.{attr}"
    if not assigns:
        text = _canonical(ns.globals.get(attr, _MISSING))
        if text is None:
            return None
        return _Node(ClosureItem(name, "constant", _display(ns.file or "?"), 0, _digest("constant", text)))
    dumper = _Dumper(lambda d: False)
    dumper.stmts(assigns, doc=False)
    refs = [_classify(ns.globals[c[0]], ns, c[0], c[1:]) for c in sorted(dumper.chains) if c[0] in ns.globals]
    digest = _digest("constant", "".join(dumper.out))
    item = ClosureItem(name, "constant", _display(ns.file or "?"), assigns[0].lineno, digest)
    return _Node(item, tuple(r for r in refs if r is not None))


def _where(ref: Any) -> tuple[str, str | None] | None:
    if isinstance(ref, types.FunctionType):
        return _namespace(ref.__globals__).name, ref.__code__.co_filename
    if isinstance(ref, type):
        mod = sys.modules.get(ref.__module__)
        return (_namespace(mod.__dict__).name, getattr(mod, "__file__", None)) if mod is not None else None
    ns = ref[1] if ref[0] == "constant" else ref[3]
    return ns.name, ns.file


def _node(ref: Any) -> _Node | None:
    table = _caches().nodes
    try:
        return table[ref]
    except KeyError:
        pass
    node: _Node | None
    if isinstance(ref, types.FunctionType):
        node = _function_node(ref)
    elif isinstance(ref, type):
        node = _class_node(ref)
    elif ref[0] == "constant":
        node = _constant_node(ref[1], ref[2])
    else:
        _, name, text, ns = ref
        node = _Node(ClosureItem(name, "constant", _display(ns.file or "?"), 0, _digest("constant", text)))
    table[ref] = node
    return node


def _fingerprint(fn: Any) -> Fingerprint | None:
    root = _as_definition(fn)
    if root is None and isinstance(getattr(fn, "func", None), types.FunctionType):  # functools.partial
        root = fn.func
    root_node = _node(root) if root is not None else None
    if root_node is None or root_node.item is None:
        return None
    where = _where(root)
    top = where[0].partition(".")[0] if where else ""
    found = [root_node.item]
    seen = {root}
    stack = list(root_node.refs)
    while stack:
        ref = stack.pop()
        if ref in seen:
            continue
        seen.add(ref)
        where = _where(ref)
        if where is None or not _in_project(where[0], where[1], top):
            continue
        node = _node(ref)
        if node is None:
            continue
        if node.redirect is not None:
            stack.append(node.redirect)
            continue
        if node.item is not None:
            found.append(node.item)
        stack.extend(node.refs)
    groups: dict[str, list[ClosureItem]] = {}
    for item in found:
        groups.setdefault(item.name, []).append(item)
    items = []
    for name in sorted(groups):
        group = sorted(groups[name], key=lambda i: (i.kind, i.digest, i.file, i.line))
        digests = sorted({i.digest for i in group})
        digest = digests[0] if len(digests) == 1 else _digest("merged", ",".join(digests))
        items.append(attrs.evolve(group[0], digest=digest))
    h = hashlib.blake2b(digest_size=16)
    for i in items:
        h.update(f"{i.name}\x00{i.kind}\x00{i.digest}\n".encode())
    return Fingerprint(h.hexdigest(), tuple(items))
