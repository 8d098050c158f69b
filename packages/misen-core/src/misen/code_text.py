"""The normalized source text behind code fingerprints, kept in the workspace so a stale task can show its diff.

Each closure item of a fingerprint (`misen.fingerprint.ClosureItem`) has a digest of its normalized code. When
a result is stored, the worker keeps the readable form of that code as a ``code`` record keyed by the digest:
``{"name", "kind", "text"}``. The text is the definition as Python without comments, docstrings, annotations,
the ``@meta(...)`` decorator or the original formatting (what the digest covers, printed by `ast.unparse`).
Later, when the code has changed, `code_changes` puts the kept text of the old digest beside the current one.
"""

from __future__ import annotations

import ast
import copy
import difflib
import functools
import os
from typing import TYPE_CHECKING, Any

import attrs

from misen import cache
from misen.fingerprint import ClosureItem, function_fingerprint
from misen.session import current_session

if TYPE_CHECKING:
    from misen.tasks import Task
    from misen.workspace import Workspace

__all__ = ["CodeChange", "code_changes", "diff_lines", "item_text", "keep_code_text"]


def _strip(node: ast.AST) -> None:
    """Drop docstrings, annotations of arguments and returns, and ``@meta`` decorators, in place."""
    for n in ast.walk(node):
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            n.decorator_list = [d for d in n.decorator_list if not _is_meta(d)]
            body = n.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    n.body = body[1:] or [ast.Pass()]
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef):
            n.returns = None
        if isinstance(n, ast.arg):
            n.annotation = None


def _is_meta(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Attribute):
        return target.attr == "meta"
    return isinstance(target, ast.Name) and target.id == "meta"


@functools.lru_cache(maxsize=256)
def _parsed(path: str, mtime_ns: int) -> ast.Module | None:
    try:
        with open(path, encoding="utf-8") as f:
            return ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return None


def _definitions(tree: ast.Module, item: ClosureItem) -> list[ast.AST]:
    """The nodes an item's digest covers: its def/class (first line, decorators included), or a constant's
    module-level assignments."""
    last = item.name.rsplit(".", 1)[-1]
    if item.kind == "constant":
        found: list[ast.AST] = []
        for stmt in tree.body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else (
                [stmt.target] if isinstance(stmt, ast.AnnAssign | ast.AugAssign) else []
            )
            for t in targets:
                while isinstance(t, ast.Subscript | ast.Attribute):
                    t = t.value
                names = [e.id for e in t.elts if isinstance(e, ast.Name)] if isinstance(t, ast.Tuple) else (
                    [t.id] if isinstance(t, ast.Name) else []
                )
                if last in names:
                    found.append(stmt)
                    break
        return found
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == last:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if first == item.line or node.lineno == item.line:
                return [node]
    return []


def item_text(item: ClosureItem) -> str | None:
    """The normalized source of a closure item of the current code, read from its file; ``None`` if not found.

    The text is the definition as Python without comments, docstrings, argument and return annotations, the
    ``@meta(...)`` decorator or the original formatting, which is what the item's digest covers.
    """
    path = item.file if os.path.isabs(item.file) else os.path.join(os.getcwd(), item.file)
    try:
        tree = _parsed(path, os.stat(path).st_mtime_ns)
    except OSError:
        return None
    nodes = _definitions(tree, item) if tree is not None else []
    if not nodes:
        return None
    parts = []
    for node in nodes:
        clone = copy.deepcopy(node)
        _strip(clone)
        try:
            parts.append(ast.unparse(clone))
        except Exception:  # an AST that cannot be printed: no text rather than an error
            return None
    return "\n".join(parts) + "\n"


def keep_code_text(ws: Workspace, task: Task[Any]) -> None:
    """Store the normalized source of every item of ``task``'s code fingerprint not yet in ``ws``. Never raises."""
    try:
        fp = task.fingerprint or (function_fingerprint(task.fn) if task._fp_bytes else None)
        if fp is None:
            return
        kept: set[tuple[int, str]] = current_session().memo("code_text.kept", set)
        for item in fp.items:
            if (id(ws), item.digest) in kept:
                continue
            if ws.get_record("code", item.digest) is None:
                text = item_text(item)
                if text is not None:
                    record = {"name": item.name, "kind": item.kind, "text": text}
                    ws.put_record("code", item.digest, record, durable=False)
            kept.add((id(ws), item.digest))
    except Exception:  # keeping the text is a convenience: it never fails a task
        return


@attrs.frozen
class CodeChange:
    """One closure item that differs between a stale result's code and the current code.

    Attributes:
        name: Qualified name of the function, class or constant.
        kind: ``"function"``, ``"class"`` or ``"constant"``.
        change: ``"changed"``, ``"added"`` or ``"removed"``.
        where: ``FILE:LINE`` of the current definition (of the old one for a removed item).
        old: The kept normalized source of the old code (``None`` if the workspace has none).
        new: The normalized source of the current code (``None`` for a removed item).
    """

    name: str
    kind: str
    change: str
    where: str
    old: str | None
    new: str | None

    def unified(self) -> list[str]:
        """The change as unified diff lines (no trailing newlines); empty when a side's text is unknown."""
        if self.old is None and self.change != "added":
            return []
        old = (self.old or "").splitlines()
        new = (self.new or "").splitlines()
        return list(difflib.unified_diff(old, new, f"{self.name} (stored result)", f"{self.name} (current)", lineterm=""))


def code_changes(task: Task[Any], ws: Workspace) -> list[CodeChange]:
    """What changed in ``task``'s code since its stale result was computed (empty if it is not stale by code)."""
    if not task.cacheable:
        return []
    rec = cache.stale_record(ws, task)
    fp = task.fingerprint
    if rec is None or fp is None:
        return []
    before: dict[str, Any] = (rec.get("fingerprint") or {}).get("items", {})
    after = {i.name: i for i in fp.items}
    out = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a is not None and b is not None and a.get("digest") == b.digest and a.get("kind") == b.kind:
            continue
        old = _kept(ws, a["digest"]) if a is not None else None
        new = None
        if b is not None:
            new = item_text(b) or _kept(ws, b.digest)
        if b is None:
            out.append(CodeChange(name, a["kind"], "removed", f"{a['file']}:{a['line']}", old, None))  # type: ignore[index]
        else:
            change = "added" if a is None else "changed"
            out.append(CodeChange(name, b.kind, change, f"{b.file}:{b.line}", old, new))
    return out


def _kept(ws: Workspace, digest: str) -> str | None:
    rec = ws.get_record("code", digest)
    text = rec.get("text") if rec else None
    return text if isinstance(text, str) else None


def diff_lines(changes: list[CodeChange]) -> list[str]:
    """Terminal lines for `code_changes`: a heading per item, then its unified diff (or why there is none)."""
    lines: list[str] = []
    for c in changes:
        lines.append(f"{c.change}: {c.name} ({c.where})")  # as `Fingerprint.diff` words it
        diff = c.unified()
        if diff:
            lines.extend("  " + d for d in diff)
        elif c.change != "removed":
            lines.append("  (the workspace kept no text of the old code: it predates misen keeping it)")
    return lines
