"""misen-core keeps its state in the session and its imports at the top of modules.

* No module-level mutable state: no dict, list or set literal (or ``dict()``/``list()``/``set()``/``defaultdict()``)
  bound at module level, and no ``global`` statement, except the one documented session slot. Constant tables are
  ``types.MappingProxyType``/``frozenset``/tuples; caches are ``functools.cache``/``lru_cache`` functions of
  immutable inputs, or live on the session (`Session.memo`) or on the plugin registry (`Registry.memo`).
* No misen module imported inside a function, except in the documented lazy facades below, each with why.
"""

from __future__ import annotations

import ast
from pathlib import Path

import misen

SRC = Path(misen.__file__).parent

#: (module, function) → why a misen import inside it is fine: the lazy facades. Everything else imports at the
#: top of its module; the lower layers reach the engine through hooks (``Task.result()`` computes through the
#: ``misen_compute`` hook), and the command lines load each command's module by name when it runs.
LAZY_FACADES = {
    ("misen.experiment", "cli"): "Experiment.cli is a facade over the command line (click, the CLI modules)",
    ("misen.experiment", "__get__"): "Experiment.cli is a facade over the command line (click, the CLI modules)",
    ("misen._builtin.engine", "misen_compute"): "the runner is imported when Task.result() first computes, not "
    "whenever plugins are registered (every process, `misen --help`)",
    ("misen.cli", "main"): "the console script's entry: imports the misen command when run",
    ("misen.cli", "experiment_cli"): "an experiment's command line from Python: imports it when run",
}
#: The one import circle allowed: `misen.experiment` and its command line, joined by the facade above.
ALLOWED_CIRCLES = (frozenset({"misen.experiment", "misen.cli._experiment_cli"}),)
#: The one slot of process-wide state.
SESSION_SLOT = ("misen.session", "_SLOT")

_MUTABLE_CALLS = {"dict", "list", "set", "defaultdict", "OrderedDict", "deque", "Counter"}


def _modules() -> list[tuple[str, ast.Module]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(("misen", *(parts[:-1] if parts[-1] == "__init__" else parts)))
        out.append((name, ast.parse(path.read_text(), str(path))))
    return out


def _runtime_imports(module: str, tree: ast.Module, known: set[str]) -> set[str]:
    """The misen modules ``module`` imports when it runs: anywhere but under ``if TYPE_CHECKING:``."""
    skipped = {
        id(sub)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for sub in ast.walk(stmt)
    }
    is_package = any(m.startswith(module + ".") for m in known)
    package = module if is_package else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, *([base] if base else [])])
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                out.add(name)
    return out


def _circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of ``graph`` with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = set()
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    members.add(top)
                    if top == node:
                        break
                if len(members) > 1:
                    found.append(frozenset(members))
    return found


def _is_mutable(value: ast.expr | None) -> bool:
    if isinstance(value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp | ast.SetComp):
        return True
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name | ast.Attribute)
        and (value.func.id if isinstance(value.func, ast.Name) else value.func.attr) in _MUTABLE_CALLS
    )


def test_no_module_level_mutable_state() -> None:
    found = []
    for module, tree in _modules():
        for node in tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if names == ["__all__"]:
                    continue
                if _is_mutable(node.value) and (module, names[0] if names else "") != SESSION_SLOT:
                    found.append(f"{module}: {', '.join(names)}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Global):
                found.append(f"{module}: global {', '.join(node.names)}")
    assert not found, "module-level mutable state:\n" + "\n".join(found)


def test_misen_imports_are_at_module_level() -> None:
    found = []
    for module, tree in _modules():
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for sub in ast.walk(node):
                names = (
                    [sub.module or ""]
                    if isinstance(sub, ast.ImportFrom)
                    else [a.name for a in sub.names]
                    if isinstance(sub, ast.Import)
                    else []
                )
                if any(n == "misen" or n.startswith("misen.") for n in names) and (module, node.name) not in LAZY_FACADES:
                    found.append(f"{module}.{node.name}: imports {', '.join(names)}")
    assert not found, "misen modules imported inside functions:\n" + "\n".join(found)


def test_no_import_circles() -> None:
    modules = _modules()
    known = {name for name, _ in modules}
    graph = {name: _runtime_imports(name, tree, known) for name, tree in modules}
    circles = [c for c in _circles(graph) if c not in ALLOWED_CIRCLES]
    assert not circles, "import circles in misen-core:\n" + "\n".join(", ".join(sorted(c)) for c in circles)


def test_the_checks_above_can_fail() -> None:
    tree = ast.parse("X = {}\ndef f():\n    from misen import tasks\n")
    assert _is_mutable(tree.body[0].value)  # type: ignore[attr-defined]
    func = tree.body[1]
    assert isinstance(func, ast.FunctionDef) and isinstance(func.body[0], ast.ImportFrom)
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset({"a", "b", "c"})]
    tree = ast.parse("from misen import tasks\nif TYPE_CHECKING:\n    from misen import cache\n")
    assert _runtime_imports("misen.x", tree, {"misen", "misen.tasks", "misen.cache", "misen.x"}) == {"misen", "misen.tasks"}
