"""The engine of ``misen fill``: find ``@meta`` task functions and give each a fresh, unique ``id=``.

Source is edited as text at exact token positions, so formatting and comments stay byte-for-byte as they were.
"""

from __future__ import annotations

import ast
import io
import os
import secrets
import tempfile
import tokenize
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs

from misen.errors import MisenError

__all__ = ["ID_ALPHABET", "FillChange", "duplicate_ids", "fill_paths", "new_id", "project_files"]

ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
"""Characters of generated ids: uppercase letters and digits without the look-alikes O/0 and I/1."""
ID_LENGTH = 10

_PRUNE = frozenset({"__pycache__", "node_modules", "site-packages", "dist-packages", "build", "dist", "venv"})
_NOT_PACKAGES = frozenset({"tests", "test", "docs", "doc", "benchmarks"})


@attrs.frozen
class FillChange:
    """One id written (or, in a dry run, to be written) by `fill_paths`.

    Attributes:
        path: The file.
        line: The line of the ``@meta`` decorator.
        function: The function's qualified name within its module (``train`` or ``Model.fit``).
        old_id: The id that was replaced (``--renew``), or ``None`` when the function had none.
        new_id: The id written.
    """

    path: Path
    line: int
    function: str
    old_id: str | None
    new_id: str


def new_id(existing: set[str]) -> str:
    """A fresh random id: 10 characters of `ID_ALPHABET` (from `secrets`), not in ``existing``.

    The caller adds it to ``existing`` if more ids follow.
    """
    while True:
        ident = "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))
        if ident not in existing:
            return ident


def _pruned(name: str, path: Path) -> bool:
    return (
        name.startswith(".") or name in _PRUNE or name.endswith(".egg-info") or (path / "pyvenv.cfg").exists()
    )


def _python_files(top: Path) -> Iterator[Path]:
    if top.is_file():
        yield top
        return
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not _pruned(d, here / d))
        yield from (here / f for f in sorted(filenames) if f.endswith(".py"))


def project_files(root: Path) -> list[Path]:
    """The ``.py`` files of the project's own package(s) under ``root``: what ``misen fill`` edits by default.

    The package is the one ``pyproject.toml``'s ``[project] name`` names (``my-project`` → ``my_project``),
    looked up as ``src/<pkg>/`` or ``<pkg>/`` (or a single module ``<pkg>.py``). Without such a name, every
    package directory (one holding ``__init__.py``) in ``src/`` and at the top level is taken, except
    ``tests``/``docs``/``benchmarks``; without any package, the top-level modules. Hidden directories, virtual
    environments, ``site-packages``, ``build``/``dist`` and ``__pycache__`` are never entered.

    Returns:
        Sorted absolute paths (empty when nothing looks like project code).
    """
    root = Path(root).resolve()
    name = None
    try:
        with (root / "pyproject.toml").open("rb") as f:
            name = tomllib.load(f).get("project", {}).get("name")
    except (OSError, tomllib.TOMLDecodeError):
        pass
    roots: list[Path] = []
    if isinstance(name, str):
        pkg = name.strip().lower().replace("-", "_").replace(".", "_")
        for base in (root / "src", root):
            if (base / pkg).is_dir():
                roots.append(base / pkg)
                break
            if (base / f"{pkg}.py").is_file():
                roots.append(base / f"{pkg}.py")
                break
    if not roots:
        for base in (root / "src", root):
            if base.is_dir():
                roots += [
                    d
                    for d in sorted(base.iterdir())
                    if d.is_dir()
                    and (d / "__init__.py").is_file()
                    and not _pruned(d.name, d)
                    and d.name not in _NOT_PACKAGES
                ]
    if not roots:
        roots = [
            p for p in sorted(root.glob("*.py")) if p.name not in ("setup.py", "conftest.py", "noxfile.py")
        ]
    return sorted({p for r in roots for p in _python_files(r)})


# --- parsing ---------------------------------------------------------------------------------------------------


@attrs.define
class _Task:
    """One ``@meta`` function found in a file."""

    qualname: str
    line: int
    decorator: ast.expr
    id_value: ast.expr | None  # the ``id=`` argument's value node, if any
    id: str | None  # its text when it is a non-empty string constant


@attrs.define
class _File:
    path: Path
    encoding: str
    text: bytes  # the source as UTF-8, which is what ast's column offsets count in
    line_starts: list[int]
    tasks: list[_Task]
    module: str

    def offset(self, line: int, col: int) -> int:
        return self.line_starts[line - 1] + col


def _module_of(path: Path) -> str:
    parts = [path.stem] if path.stem != "__init__" else []
    parent = path.parent
    while (parent / "__init__.py").is_file():
        parts.insert(0, parent.name)
        parent = parent.parent
    return ".".join(parts)


def _meta_spellings(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Names bound to misen's ``meta`` and to the ``misen`` package by this file's imports."""
    names: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module in ("misen", "misen.taskmeta")
        ):
            for alias in node.names:
                if alias.name == "meta":
                    names.add(alias.asname or "meta")
                elif alias.name == "*":
                    names.add("meta")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "misen" or (alias.name.startswith("misen.") and alias.asname is None):
                    modules.add(alias.asname or "misen")
    return names, modules


def _chain(node: ast.expr) -> tuple[str, ...]:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ()
    return (node.id, *reversed(parts))


def _find_tasks(tree: ast.Module) -> list[_Task]:
    names, modules = _meta_spellings(tree)

    def is_meta(d: ast.expr) -> bool:
        chain = _chain(d.func if isinstance(d, ast.Call) else d)
        return (len(chain) == 1 and chain[0] in names) or (
            len(chain) in (2, 3) and chain[0] in modules and chain[1:] in (("meta",), ("taskmeta", "meta"))
        )

    found: list[_Task] = []

    def visit(body: Iterable[ast.AST], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                qual = prefix + node.name
                deco = next((d for d in node.decorator_list if is_meta(d)), None)
                if deco is not None:
                    kw = (
                        next((k for k in deco.keywords if k.arg == "id"), None)
                        if isinstance(deco, ast.Call)
                        else None
                    )
                    value = kw.value if kw is not None else None
                    text = (
                        value.value
                        if isinstance(value, ast.Constant) and isinstance(value.value, str)
                        else None
                    )
                    found.append(_Task(qual, deco.lineno, deco, value, text or None))
                visit(node.body, qual + ".<locals>.")
            elif isinstance(node, ast.ClassDef):
                visit(node.body, prefix + node.name + ".")
            else:
                visit(ast.iter_child_nodes(node), prefix)

    visit(tree.body, "")
    return found


def _read(path: Path) -> _File:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MisenError(f"misen fill: cannot read {path}: {exc.strerror or exc}") from None
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
        source = raw.decode(encoding)
        tree = ast.parse(source, str(path))
    except SyntaxError as exc:
        raise MisenError(
            f"misen fill: {path}:{exc.lineno or 0}: syntax error ({exc.msg}); no file was changed"
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise MisenError(
            f"misen fill: {path}: cannot decode the source ({exc}); no file was changed"
        ) from None
    text = source.encode("utf-8")
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return _File(path, encoding, text, starts, _find_tasks(tree), _module_of(path))


def _read_all(paths: Iterable[Path]) -> list[_File]:
    found: set[Path] = set()
    for top in map(Path, paths):
        if not top.exists():
            raise MisenError(f"misen fill: no such file or directory: {top}")
        found.update(p.resolve() for p in _python_files(top))
    return [_read(p) for p in sorted(found)]


# --- editing ---------------------------------------------------------------------------------------------------


def _skip_blank(text: bytes, pos: int) -> int:
    """The position of the next token at or after ``pos``, skipping spaces, newlines, continuations, comments."""
    while pos < len(text):
        c = text[pos : pos + 1]
        if c in b" \t\r\n\x0c\\":
            pos += 1
        elif c == b"#":
            end = text.find(b"\n", pos)
            pos = len(text) if end < 0 else end
        else:
            break
    return pos


def _line_of(f: _File, offset: int) -> int:
    lo, hi = 0, len(f.line_starts) - 1
    while lo < hi:  # the last line start <= offset
        mid = (lo + hi + 1) // 2
        if f.line_starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    return lo + 1


def _edit(f: _File, task: _Task, ident: str) -> tuple[int, int, bytes]:
    """``(start, end, replacement)`` in ``f.text`` that gives ``task`` the id ``ident``."""
    arg = f'id="{ident}"'.encode()
    deco = task.decorator
    if task.id_value is not None:  # --renew, or an empty/None id: replace the value only
        v = task.id_value
        return (
            f.offset(v.lineno, v.col_offset),
            f.offset(v.end_lineno or v.lineno, v.end_col_offset or 0),
            f'"{ident}"'.encode(),
        )
    if not isinstance(deco, ast.Call):  # bare @meta
        end = f.offset(deco.end_lineno or deco.lineno, deco.end_col_offset or 0)
        return end, end, b"(" + arg + b")"
    func = deco.func
    paren = _skip_blank(f.text, f.offset(func.end_lineno or func.lineno, func.end_col_offset or 0))
    if f.text[paren : paren + 1] != b"(":
        raise MisenError(f"misen fill: {f.path}:{deco.lineno}: cannot find the '(' of the @meta call")
    args: list[ast.expr | ast.keyword] = [*deco.args, *deco.keywords]
    if not args:
        return paren + 1, paren + 1, arg
    first = min(args, key=lambda a: (a.lineno, a.col_offset))
    start = f.offset(first.lineno, first.col_offset)
    if first.lineno > _line_of(f, paren):  # a call laid out over lines: id gets a line of its own
        line_start = f.line_starts[first.lineno - 1]
        indent = f.text[line_start:start]
        if not indent.strip():
            previous = f.text[f.line_starts[first.lineno - 2] : line_start]
            newline = b"\r\n" if previous.endswith(b"\r\n") else b"\r" if previous.endswith(b"\r") else b"\n"
            return line_start, line_start, indent + arg + b"," + newline
    return start, start, arg + b", "


def _write(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically (a temporary file in the same directory, then rename), keeping its mode."""
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".fill", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _names(f: _File, task: _Task) -> set[str]:
    """The spellings ``--renew`` accepts for a task: ``fit``, ``Model.fit``, ``pkg.mod.Model.fit``, ``pkg.mod:Model.fit``."""
    short = task.qualname.rsplit(".", 1)[-1]
    return {short, task.qualname, f"{f.module}.{task.qualname}", f"{f.module}:{task.qualname}"}


def fill_paths(
    paths: list[Path], *, renew: set[str] | None = None, dry_run: bool = False
) -> list[FillChange]:
    """Give every ``@meta`` function in ``paths`` that has no ``id=`` a fresh, unique one.

    ``@meta`` is recognised under any spelling bound by the file's imports of misen: ``@meta``,
    ``@meta(...)``, ``@m(...)`` after ``from misen import meta as m``, ``@misen.meta(...)``. The id is inserted
    as the first argument: ``@meta`` becomes ``@meta(id="...")``, ``@meta(cache=True)`` becomes
    ``@meta(id="...", cache=True)``, and a call laid out over several lines gets ``id="...",`` on a line of its
    own, indented like the argument that follows. Nothing else in the file changes, byte for byte. Existing
    ids are never touched, except for the functions named in ``renew``; an ``id=None`` or ``id=""`` counts as
    missing; a call with ``**options`` is left alone (they may hold an id). New ids are unique across all the files given and their existing ids.

    Every file is parsed before any is written, so an error leaves all files as they were. Files are replaced
    atomically, keeping their permissions and encoding.

    Args:
        paths: Files and directories (searched for ``*.py``, skipping hidden directories, virtual
            environments, ``site-packages``, ``build``/``dist``); `project_files` gives the default set.
        renew: Functions whose id is replaced by a fresh one (inserted if they have none), each named by its
            name (``train``), qualified name (``Model.fit``), ``module.qualname`` or ``module:qualname``.
        dry_run: Compute and return the changes without writing anything.

    Returns:
        The changes, ordered by file and then by position in the file.

    Raises:
        MisenError: A path does not exist, a file cannot be read or parsed (the message names the file and the
            line), or a name in ``renew`` matches no ``@meta`` function in the files.
    """
    files = _read_all(paths)
    existing = {t.id for f in files for t in f.tasks if t.id}
    wanted = set(renew or ())
    matched: set[str] = set()
    changes: list[FillChange] = []
    plans: list[tuple[_File, list[tuple[int, int, bytes]]]] = []
    for f in files:
        edits = []
        for task in f.tasks:
            hit = wanted & _names(f, task)
            matched |= hit
            if task.id is not None and not hit:
                continue
            if task.id_value is None and isinstance(task.decorator, ast.Call):
                if any(k.arg is None for k in task.decorator.keywords):
                    continue  # `@meta(**options)` may carry an id already: inserting one could duplicate it
            ident = new_id(existing)
            existing.add(ident)
            edits.append(_edit(f, task, ident))
            changes.append(FillChange(f.path, task.line, task.qualname, task.id, ident))
        if edits:
            plans.append((f, edits))
    unknown = sorted(wanted - matched)
    if unknown:
        raise MisenError(
            f"misen fill --renew: no @meta function named {', '.join(map(repr, unknown))} in the files given"
        )
    if dry_run:
        return changes
    for f, edits in plans:
        text = f.text
        for start, end, new in sorted(edits, reverse=True):
            text = text[:start] + new + text[end:]
        source = text.decode("utf-8")
        try:
            ast.parse(source, str(f.path))
        except SyntaxError as exc:  # a bug here must never damage a user's file
            raise MisenError(
                f"misen fill: {f.path}: the edit would break the file ({exc.msg}); not written"
            ) from None
        _write(f.path, source.encode(f.encoding))
    return changes


def duplicate_ids(paths: list[Path]) -> dict[str, list[tuple[Path, int, str]]]:
    """Ids used by more than one ``@meta`` function in ``paths`` (files and directories, as in `fill_paths`).

    Returns:
        ``{id: [(path, decorator line, qualified function name), ...]}`` for every id seen at least twice,
        sorted by id; empty when all ids are unique.

    Raises:
        MisenError: A path does not exist or a file cannot be read or parsed.
    """
    seen: dict[str, list[tuple[Path, int, str]]] = {}
    for f in _read_all(paths):
        for task in f.tasks:
            if task.id is not None:
                seen.setdefault(task.id, []).append((f.path, task.line, task.qualname))
    return {k: v for k, v in sorted(seen.items()) if len(v) > 1}
