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

#: (module, function) → why a misen import inside it is fine: the lazy facades.
LAZY_FACADES = {
    ("misen.__init__", "__getattr__"): "`import misen` stays cheap: public names are imported on first use",
    ("misen.tasks", "result"): "Task's workspace queries are facades over the runner and cache",
    ("misen.tasks", "is_cached"): "Task's workspace queries are facades over the runner and cache",
    ("misen.tasks", "done"): "Task's workspace queries are facades over the runner and cache",
    ("misen.tasks", "is_running"): "Task's workspace queries are facades over the runner and cache",
    ("misen.tasks", "work_dir"): "Task's workspace queries are facades over the runner and cache",
    ("misen.experiment", "run"): "Experiment.run is a facade over the runner",
    ("misen.experiment", "cli"): "Experiment.cli is a facade over the command line",
    ("misen.experiment", "__get__"): "Experiment.cli is a facade over the command line",
    ("misen.plugins", "registry"): "the current session's registry, for code without a session at hand",
    ("misen.settings", "find_project_root"): "facade over the current session",
    ("misen.settings", "project_root"): "facade over the current session",
    ("misen.settings", "set_config_override"): "facade over the current session (what --config does)",
    ("misen.settings", "load_settings"): "facade over the current session",
}
#: Packages whose functions may import lazily: the command line loads each command's code on first use, so that
#: ``misen --help`` stays within its start-up budget.
LAZY_PACKAGES = ("misen.cli",)
#: The one slot of process-wide state.
SESSION_SLOT = ("misen.session", "_SLOT")

_MUTABLE_CALLS = {"dict", "list", "set", "defaultdict", "OrderedDict", "deque", "Counter"}


def _modules() -> list[tuple[str, ast.Module]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        name = ".".join(("misen", *path.relative_to(SRC).with_suffix("").parts))
        out.append((name, ast.parse(path.read_text(), str(path))))
    return out


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
        if module.startswith(LAZY_PACKAGES):
            continue
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


def test_the_checks_above_can_fail() -> None:
    tree = ast.parse("X = {}\ndef f():\n    from misen import tasks\n")
    assert _is_mutable(tree.body[0].value)  # type: ignore[attr-defined]
    func = tree.body[1]
    assert isinstance(func, ast.FunctionDef) and isinstance(func.body[0], ast.ImportFrom)
