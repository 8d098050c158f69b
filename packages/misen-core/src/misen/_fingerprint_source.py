"""Reading and normalizing source for code fingerprints: parsed files, symbol tables and the canonical dump.

The dump leaves out docstrings, annotations, the ``@meta`` decorator, line numbers and formatting, so only
semantic edits change a digest.
"""

from __future__ import annotations

import ast
import hashlib
import linecache
import symtable
from collections.abc import Callable
from typing import Any

import attrs

from misen.session import current_session

# --- sources ---------------------------------------------------------------------------------------------------


@attrs.define(eq=False)
class _Source:
    """One parsed file: its tree, symbol tables and indexes, built once per process."""

    tree: ast.Module
    defs: dict[tuple[str, int], list[ast.AST]] = attrs.Factory(dict)  # (name, first line) -> def/lambda nodes
    classes: dict[str, list[ast.ClassDef]] = attrs.Factory(dict)  # qualname -> class nodes
    tables: dict[tuple[str, int], list[symtable.SymbolTable]] = attrs.Factory(dict)
    bindings: dict[str, list[ast.stmt]] = attrs.Factory(dict)  # module-level name -> statements binding it


def _sources() -> dict[str, _Source | None]:
    """Parsed source files, once per session (`misen.session.Session.memo`)."""
    return current_session().memo("misen.fingerprint.sources", dict)  # type: ignore[no-any-return]


def _source(filename: str, module_globals: dict[str, Any] | None) -> _Source | None:
    table = _sources()
    try:
        return table[filename]
    except KeyError:
        pass
    src = None
    lines = linecache.getlines(filename, module_globals)
    if lines:
        text = "".join(lines)
        try:
            src = _Source(ast.parse(text, filename))
            _index_tables(symtable.symtable(text, filename, "exec"), src)
        except (SyntaxError, ValueError):
            src = None
        else:
            _index_tree(src.tree, "", src)
            _index_bindings(src.tree.body, src)
    table[filename] = src
    return src


def _index_tree(node: ast.AST, qual: str, src: _Source) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
            src.defs.setdefault((child.name, first), []).append(child)
            _index_tree(child, f"{qual}{child.name}.<locals>.", src)
        elif isinstance(child, ast.ClassDef):
            src.classes.setdefault(qual + child.name, []).append(child)
            _index_tree(child, f"{qual}{child.name}.", src)
        elif isinstance(child, ast.Lambda):
            src.defs.setdefault(("<lambda>", child.lineno), []).append(child)
            _index_tree(child, f"{qual}<lambda>.<locals>.", src)
        else:
            _index_tree(child, qual, src)


def _index_tables(table: symtable.SymbolTable, src: _Source) -> None:
    for child in table.get_children():
        src.tables.setdefault((child.get_name(), child.get_lineno()), []).append(child)
        _index_tables(child, src)


def _index_bindings(body: list[ast.stmt], src: _Source) -> None:
    """Module-level statements that bind or mutate a name (also inside top-level if/try/with/for blocks)."""
    for stmt in body:
        targets: list[ast.expr] = []
        if isinstance(stmt, ast.Assign):
            targets = stmt.targets
        elif isinstance(stmt, ast.AnnAssign | ast.AugAssign):
            targets = [stmt.target]
        elif isinstance(stmt, ast.Import | ast.ImportFrom):
            for alias in stmt.names:
                name = alias.asname or alias.name.split(".")[0]
                src.bindings.setdefault(name, []).append(stmt)
        elif isinstance(stmt, ast.If | ast.Try | ast.With | ast.For | ast.While):
            for field in ("body", "orelse", "finalbody"):
                _index_bindings(getattr(stmt, field, []), src)
            for handler in getattr(stmt, "handlers", []):
                _index_bindings(handler.body, src)
        for name in sorted({n for t in targets for n in _target_names(t)}):
            src.bindings.setdefault(name, []).append(stmt)


def _target_names(target: ast.expr) -> list[str]:
    """The module names an assignment target binds or mutates: ``X``, ``A, B``, ``CONFIG["k"]``, ``OBJ.attr``."""
    if isinstance(target, ast.Tuple | ast.List):
        return [n for t in target.elts for n in _target_names(t)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    while isinstance(target, ast.Subscript | ast.Attribute):
        target = target.value
    return [target.id] if isinstance(target, ast.Name) else []


# --- normalization ---------------------------------------------------------------------------------------------

_SKIP_FIELDS = frozenset({"type_comment", "kind", "type_params", "returns"})


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _chain(node: ast.expr) -> tuple[str, ...] | None:
    """``a.b.c`` as ``("a", "b", "c")``; None when the chain does not start at a name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return tuple(reversed(parts))


class _Dumper:
    """A canonical text of an AST that skips what does not change behaviour, collecting the names it loads.

    The text names node types and non-empty fields only, so it reads the same across Python versions that add
    optional fields, and it never contains line numbers.
    """

    def __init__(self, is_meta: Callable[[ast.expr], bool]) -> None:
        self.out: list[str] = []
        self.chains: set[tuple[str, ...]] = set()
        self.is_meta = is_meta
        self.where = "module"

    def stmts(self, body: list[ast.stmt], doc: bool) -> None:
        if doc and body and _is_docstring(body[0]):
            body = body[1:]
        self.out.append("[")
        for stmt in body:
            if isinstance(stmt, ast.AnnAssign) and self.where != "class":
                if stmt.value is None:
                    continue  # a bare annotation of a local or module name does nothing at run time
                stmt = ast.Assign(targets=[stmt.target], value=stmt.value)
            self.node(stmt)
            self.out.append(";")
        self.out.append("]")

    def scope(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, where: str) -> None:
        out = self.out
        out.append(f"{type(node).__name__}({node.name}")
        self.value([d for d in node.decorator_list if not self.is_meta(d)])
        if isinstance(node, ast.ClassDef):
            self.value(node.bases)
            self.value(node.keywords)
        else:
            self.node(node.args)
        outer, self.where = self.where, where
        self.stmts(node.body, doc=True)
        self.where = outer
        out.append(")")

    def value(self, v: Any) -> None:
        if isinstance(v, ast.AST):
            self.node(v)
        elif isinstance(v, list):
            if v and isinstance(v[0], ast.stmt):
                self.stmts(v, doc=False)
                return
            self.out.append("[")
            for x in v:
                self.value(x)
                self.out.append(",")
            self.out.append("]")
        else:
            self.out.append(repr(v))

    def node(self, n: ast.AST) -> None:
        t = type(n)
        if t is ast.Name:
            self.out.append(f"N({n.id})")  # type: ignore[attr-defined]
            if type(n.ctx) is ast.Load:  # type: ignore[attr-defined]
                self.chains.add((n.id,))  # type: ignore[attr-defined]
            return
        if t is ast.Constant:
            v = n.value  # type: ignore[attr-defined]
            self.out.append(f"C({type(v).__name__}:{v!r})")
            return
        if t is ast.arg:
            self.out.append(f"arg({n.arg})")  # type: ignore[attr-defined]
            return
        if t is ast.FunctionDef or t is ast.AsyncFunctionDef:
            self.scope(n, "function")  # type: ignore[arg-type]
            return
        if t is ast.ClassDef:
            self.scope(n, "class")  # type: ignore[arg-type]
            return
        if t is ast.Attribute and type(n.ctx) is ast.Load:  # type: ignore[attr-defined]
            chain = _chain(n)  # type: ignore[arg-type]
            if chain:
                self.chains.add(chain)
        out = self.out
        out.append(t.__name__ + "(")
        for field in n._fields:
            if field in _SKIP_FIELDS:
                continue
            v = getattr(n, field, None)
            if v is None or v == []:
                continue
            out.append(field + "=")
            self.value(v)
            out.append(",")
        out.append(")")


def _digest(kind: str, text: str) -> str:
    return hashlib.blake2b(f"{kind}\x00{text}".encode(), digest_size=16).hexdigest()


def _canonical(v: Any, depth: int = 0) -> str | None:
    """A deterministic text of a simple value (None, numbers, strings, bytes and containers of them)."""
    t = type(v)
    if v is None or t in (bool, int, float, complex, str, bytes):
        return f"{t.__name__}:{v!r}"
    if depth > 20 or t not in (tuple, list, set, frozenset, dict):
        return None
    if t is dict:
        pairs = [(_canonical(k, depth + 1), _canonical(x, depth + 1)) for k, x in v.items()]
        if any(a is None or b is None for a, b in pairs):
            return None
        return "dict{" + ",".join(sorted(f"{a}:{b}" for a, b in pairs)) + "}"
    parts = [_canonical(x, depth + 1) for x in v]
    if None in parts:
        return None
    if t in (set, frozenset):
        parts.sort()  # type: ignore[arg-type]
    return f"{t.__name__}[" + ",".join(parts) + "]"  # type: ignore[arg-type]
