"""Tests of code fingerprints: real project files, edited between runs, fingerprinted in fresh processes."""

from __future__ import annotations

import functools
import importlib
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from misen.fingerprint import ClosureItem, Fingerprint, function_fingerprint

PROJECT = {
    "src/mypkg/__init__.py": "",
    "src/mypkg/lazy.py": """\
        def far(x):
            return x


        def away(x):
            return -x
        """,
    "src/mypkg/config.py": """\
        LR = 0.1
        BATCH = 32
        OPTIONS = {"depth": 2}
        OPTIONS["width"] = 8
        KEYS = ["a"]
        """,
    "src/mypkg/util.py": '''\
        """Helpers."""
        import json

        SCALE = 3


        def helper(x):
            return _scale(x) + 1


        def _scale(x):
            return x * SCALE


        def inner(y):
            return y - 1


        def unrelated():
            return "not reached"


        class Model:
            """A model."""

            size: int = 3

            def __init__(self, x):
                self.x = x

            def fit(self):
                return self.predict() + json.dumps(self.size).count("3")

            def predict(self):
                return self.x * 2

            def clone(self):
                return Model(self.x)
        ''',
    "src/mypkg/tasks.py": '''\
        from __future__ import annotations

        import attrs

        import mypkg
        import mypkg.util
        import mypkg.util as u
        from misen import meta
        from . import config
        from .config import LR
        from .util import helper


        @meta(id="T1", cache=True)
        def via_from(x: int) -> int:
            """Doc of via_from."""
            y: int = helper(x)  # a comment
            return y


        @meta(id="T2")
        def via_alias(x):
            return u.helper(x)


        @meta(id="T3")
        def via_dotted(x):
            return mypkg.util.helper(x)


        @meta(id="T4")
        def reads_constant(x):
            return x * LR


        def reads_options():
            return config.OPTIONS


        def uses_model(x):
            return u.Model(x).fit()


        def recursive(n):
            return 1 if n <= 1 else n * recursive(n - 1)


        def ping(n):
            return pong(n - 1) if n else 0


        def pong(n):
            return ping(n)


        def with_lambda(xs):
            f = lambda v: u.inner(v)  # noqa: E731
            return [f(x) for x in xs]


        def with_nested(x):
            def nested(y):
                return mypkg.util.inner(y)

            return nested(x)


        def local_import(x):
            from .util import inner as i

            return i(x)


        def third_party(x):
            return attrs.asdict(x)


        def lazy_submodule(x):
            return mypkg.lazy.far(x)


        def lazy_import(x):
            import mypkg.lazy
            from mypkg.lazy import away

            return away(x) + mypkg.lazy.far(x)


        def unreachable():
            return 1


        if __name__ == "__main__":
            import json, sys
            from misen.fingerprint import function_fingerprint

            print(json.dumps({n: function_fingerprint(globals()[n]).as_dict() for n in sys.argv[1:]}))
        ''',
}

TARGETS = [
    "via_from",
    "via_alias",
    "via_dotted",
    "reads_constant",
    "uses_model",
    "recursive",
    "ping",
    "with_lambda",
    "with_nested",
    "local_import",
    "third_party",
    "lazy_submodule",
    "lazy_import",
    "reads_options",
]

SCRIPT = """\
import importlib, json, sys
from misen.fingerprint import function_fingerprint
out = {}
for target in sys.argv[1:]:
    module, _, name = target.partition(":")
    fp = function_fingerprint(getattr(importlib.import_module(module), name))
    out[target] = fp.as_dict() if fp else None
print(json.dumps(out))
"""


def _write_project(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def _run(root: Path, args: list[str], seed: str = "0") -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(root / "src"), PYTHONHASHSEED=seed, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def _fingerprints(root: Path, targets: list[str] = TARGETS, seed: str = "0") -> dict[str, Any]:
    found = _run(root, [sys.executable, "-c", SCRIPT, *(f"mypkg.tasks:{t}" for t in targets)], seed)
    return {k.partition(":")[2]: v for k, v in found.items()}


def _digests(root: Path) -> dict[str, str]:
    return {name: fp["digest"] for name, fp in _fingerprints(root).items()}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("fingerprint_project")
    _write_project(root, PROJECT)
    return root, _fingerprints(root)


def test_the_closure_holds_exactly_the_project_code_reached(project: tuple[Path, dict[str, Any]]) -> None:
    _, fps = project
    names = {t: list(fps[t]["items"]) for t in TARGETS}
    helper = ["mypkg.util.SCALE", "mypkg.util._scale", "mypkg.util.helper"]
    assert names["via_from"] == ["mypkg.tasks.via_from", *helper]  # sorted by name
    assert names["via_alias"] == ["mypkg.tasks.via_alias", *helper]
    assert names["via_dotted"] == ["mypkg.tasks.via_dotted", *helper]
    assert names["reads_constant"] == ["mypkg.config.LR", "mypkg.tasks.reads_constant"]
    assert names["reads_options"] == ["mypkg.config.OPTIONS", "mypkg.tasks.reads_options"]
    assert names["uses_model"] == ["mypkg.tasks.uses_model", "mypkg.util.Model"]
    assert names["recursive"] == ["mypkg.tasks.recursive"]
    assert names["ping"] == ["mypkg.tasks.ping", "mypkg.tasks.pong"]
    assert names["with_lambda"] == ["mypkg.tasks.with_lambda", "mypkg.util.inner"]
    assert names["with_nested"] == ["mypkg.tasks.with_nested", "mypkg.util.inner"]
    assert names["local_import"] == ["mypkg.tasks.local_import", "mypkg.util.inner"]
    assert names["third_party"] == ["mypkg.tasks.third_party"]  # attrs is not walked
    # Reached though nothing imported mypkg.lazy when the task was made: the same in every process.
    assert names["lazy_submodule"] == ["mypkg.lazy.far", "mypkg.tasks.lazy_submodule"]
    assert names["lazy_import"] == ["mypkg.lazy.away", "mypkg.lazy.far", "mypkg.tasks.lazy_import"]
    via_from = fps["via_from"]["items"]["mypkg.tasks.via_from"]
    assert via_from["kind"] == "function" and via_from["file"] == os.path.join("src", "mypkg", "tasks.py")
    assert via_from["line"] == 14  # the decorator's line
    assert fps["reads_constant"]["items"]["mypkg.config.LR"]["kind"] == "constant"
    assert fps["uses_model"]["items"]["mypkg.util.Model"]["kind"] == "class"


# Each edit: (file, old text, new text, the targets whose fingerprint must change).
EDITS = [
    (
        "src/mypkg/util.py",
        "return _scale(x) + 1",
        "return _scale(x) + 2",
        {"via_from", "via_alias", "via_dotted"},
    ),
    (
        "src/mypkg/util.py",
        "return x * SCALE",
        "return x * SCALE * 1",
        {"via_from", "via_alias", "via_dotted"},
    ),
    ("src/mypkg/util.py", "SCALE = 3", "SCALE = 4", {"via_from", "via_alias", "via_dotted"}),
    ("src/mypkg/util.py", "return y - 1", "return y - 2", {"with_lambda", "with_nested", "local_import"}),
    ("src/mypkg/util.py", "return self.x * 2", "return self.x * 3", {"uses_model"}),
    ("src/mypkg/util.py", 'return "not reached"', 'return "still not reached"', set()),
    ("src/mypkg/util.py", '"""A model."""', '"""A model, documented better."""', set()),
    ("src/mypkg/config.py", "LR = 0.1", "LR = 0.2", {"reads_constant"}),
    ("src/mypkg/config.py", "BATCH = 32", "BATCH = 64", set()),
    ("src/mypkg/config.py", 'OPTIONS["width"] = 8', 'OPTIONS["width"] = 16', {"reads_options"}),
    ("src/mypkg/config.py", 'KEYS = ["a"]', 'KEYS = ["b"]', set()),
    ("src/mypkg/tasks.py", "return y\n", "return y + 0\n", {"via_from"}),
    ("src/mypkg/tasks.py", "return 1 if n <= 1", "return 2 if n <= 1", {"recursive"}),
    ("src/mypkg/tasks.py", "return ping(n)", "return ping(n - 1)", {"ping"}),
    ("src/mypkg/tasks.py", "f = lambda v: u.inner(v)", "f = lambda v: u.inner(v + 1)", {"with_lambda"}),
    ("src/mypkg/tasks.py", "return mypkg.util.inner(y)", "return mypkg.util.inner(-y)", {"with_nested"}),
    ("src/mypkg/tasks.py", "return attrs.asdict(x)", "return attrs.astuple(x)", {"third_party"}),
    ("src/mypkg/lazy.py", "return x\n", "return x + 1\n", {"lazy_submodule", "lazy_import"}),
    ("src/mypkg/tasks.py", "def unreachable():\n    return 1", "def unreachable():\n    return 2", set()),
    # Neither comments, docstrings, formatting, annotations nor @meta's options change anything.
    ("src/mypkg/tasks.py", "  # a comment", "  # another comment", set()),
    ("src/mypkg/tasks.py", '"""Doc of via_from."""', '"""Doc of via_from, longer."""', set()),
    ("src/mypkg/tasks.py", "def via_from(x: int) -> int:", "def via_from(x: float) -> str:", set()),
    ("src/mypkg/tasks.py", "y: int = helper(x)", "y  =  helper( x )", set()),
    (
        "src/mypkg/tasks.py",
        '@meta(id="T1", cache=True)',
        '@meta(id="T1", cache=True, resources={"gpus": 1})',
        set(),
    ),
    ("src/mypkg/tasks.py", "def with_nested(x):\n", "def with_nested(x):\n\n\n", set()),
]


@pytest.mark.parametrize(
    "batch", [EDITS[:8], EDITS[8:19], EDITS[19:]], ids=["util", "config-tasks", "neutral"]
)
def test_edits_change_exactly_the_tasks_that_reach_them(
    project: tuple[Path, dict[str, Any]], batch: list[tuple[str, str, str, set[str]]], tmp_path: Path
) -> None:
    base_root, base = project
    base_digests = {t: fp["digest"] for t, fp in base.items()}
    for file, old, new, expected in batch:
        root = tmp_path / f"edit{EDITS.index((file, old, new, expected))}"
        files = dict(PROJECT)
        text = textwrap.dedent(files[file])
        assert text.count(old) == 1, old
        files[file] = text.replace(old, new)
        _write_project(root, files)
        after = _digests(root)
        changed = {t for t in TARGETS if after[t] != base_digests[t]}
        assert changed == expected, f"{file}: {old!r} -> {new!r}"
    _ = base_root


def test_undoing_an_edit_gives_the_old_fingerprint_back(
    project: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, base = project
    copy = tmp_path / "copy"
    _write_project(copy, PROJECT)
    util = copy / "src/mypkg/util.py"
    original = util.read_text()
    util.write_text(original.replace("return _scale(x) + 1", "return _scale(x) + 5"))
    edited = _fingerprints(copy, ["via_from"])["via_from"]
    util.write_text(original)
    undone = _fingerprints(copy, ["via_from"])["via_from"]
    assert edited["digest"] != base["via_from"]["digest"]
    assert undone["digest"] == base["via_from"]["digest"]
    assert Fingerprint.diff(base["via_from"], edited) == ["changed: mypkg.util.helper (src/mypkg/util.py:7)"]
    assert Fingerprint.diff(edited, undone) == ["changed: mypkg.util.helper (src/mypkg/util.py:7)"]
    assert Fingerprint.diff(undone, base["via_from"]) == []


def test_fingerprints_do_not_depend_on_hash_seed_or_import_order(
    project: tuple[Path, dict[str, Any]],
) -> None:
    root, base = project
    again = _fingerprints(root, list(reversed(TARGETS)), seed="12345")
    assert {t: fp["digest"] for t, fp in again.items()} == {t: fp["digest"] for t, fp in base.items()}
    # Import the helpers' module first, then the tasks: the same digests.
    script = "import mypkg.util, mypkg.config\n" + SCRIPT
    first = _run(root, [sys.executable, "-c", script, "mypkg.tasks:via_from"], seed="7")
    assert first["mypkg.tasks:via_from"]["digest"] == base["via_from"]["digest"]


def test_run_as_main_fingerprints_like_the_imported_module(project: tuple[Path, dict[str, Any]]) -> None:
    root, base = project
    found = _run(root, [sys.executable, "-m", "mypkg.tasks", "via_from", "ping", "reads_constant"])
    for name in ("via_from", "ping", "reads_constant"):
        assert found[name] == base[name]


# --- in-process cases ------------------------------------------------------------------------------------------

_counter = iter(range(10**6))


def _module(tmp_path: Path, source: str, name: str | None = None) -> Any:
    """Write ``source`` as a fresh module file and import it under a unique name."""
    name = name or f"fp_case_{next(_counter)}"
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_pinned_digests(tmp_path: Path) -> None:
    # Literal digests: any change to the normalizer or the digest layout must be deliberate.
    mod = _module(
        tmp_path,
        """\
        FACTOR = 2

        def add(a, b):
            return a + b

        def scaled(a):
            \"\"\"Docs are not code.\"\"\"
            return add(a, a) * FACTOR
        """,
        name="fp_pinned",
    )
    add, scaled = function_fingerprint(mod.add), function_fingerprint(mod.scaled)
    assert add is not None and scaled is not None
    assert add.digest == "71dca71686ddeeddfbeec400ffb67334"
    assert [(i.name, i.kind, i.digest) for i in scaled.items] == [
        ("fp_pinned.FACTOR", "constant", "4c9833510890c9491ebec2d8a05982ca"),
        ("fp_pinned.add", "function", add.items[0].digest),
        ("fp_pinned.scaled", "function", "9455ee9dd31722e976033cab35efe2b6"),
    ]
    assert scaled.digest == "c8e52ea7a91293dc7447c1f71d63dc6a"


def test_no_source_gives_none_and_never_raises(tmp_path: Path) -> None:
    namespace: dict[str, Any] = {}
    exec("def made(x):\n    return x\n", namespace)
    assert function_fingerprint(len) is None
    assert function_fingerprint(math.sqrt) is None
    assert function_fingerprint(namespace["made"]) is None
    assert function_fingerprint(42) is None
    assert function_fingerprint(object()) is None
    assert function_fingerprint({}) is None  # unhashable: not cached, still no error


def test_cached_per_function(tmp_path: Path) -> None:
    mod = _module(tmp_path, "def f(x):\n    return x\n")
    first = function_fingerprint(mod.f)
    assert first is not None
    assert function_fingerprint(mod.f) is first


def test_wrappers_partials_and_classes(tmp_path: Path) -> None:
    mod = _module(
        tmp_path,
        """\
        import functools

        def deco(fn):
            @functools.wraps(fn)
            def wrapper(*a):
                return fn(*a)
            return wrapper

        @deco
        def wrapped(x):
            return helper(x)

        def helper(x):
            return x

        class Node:
            def child(self):
                return Node()

        @functools.lru_cache
        def cached(x):
            return helper(x)
        """,
    )
    name = mod.__name__
    wrapped = function_fingerprint(mod.wrapped)
    assert wrapped is not None
    assert [i.name for i in wrapped.items] == [f"{name}.deco", f"{name}.helper", f"{name}.wrapped"]
    part = function_fingerprint(functools.partial(mod.helper, 1))
    assert part is not None and part.digest == function_fingerprint(mod.helper).digest  # type: ignore[union-attr]
    node = function_fingerprint(mod.Node)  # a class refers to itself: the walk ends
    assert node is not None and [(i.name, i.kind) for i in node.items] == [(f"{name}.Node", "class")]
    cached = function_fingerprint(mod.cached)
    assert cached is not None and [i.name for i in cached.items] == [f"{name}.cached", f"{name}.helper"]


def test_stdlib_third_party_and_misen_are_not_walked(tmp_path: Path) -> None:
    mod = _module(
        tmp_path,
        """\
        import json
        import attrs
        from misen import Task
        from json import dumps

        def task(x):
            return json.loads(dumps(x)), attrs.asdict, Task
        """,
    )
    fp = function_fingerprint(mod.task)
    assert fp is not None and [i.name for i in fp.items] == [f"{mod.__name__}.task"]


def test_closure_cells_and_simple_constants(tmp_path: Path) -> None:
    mod = _module(
        tmp_path,
        """\
        def helper(x):
            return x

        def make(k):
            def task(x):
                return helper(x) * k
            return task

        TABLE = {"b": [1, 2], "a": (3.0, None)}
        """,
    )
    name = mod.__name__
    three, four = function_fingerprint(mod.make(3)), function_fingerprint(mod.make(4))
    assert three is not None and four is not None
    assert [i.name for i in three.items] == [
        f"{name}.helper",
        f"{name}.make.<locals>.task",
        f"{name}.make.<locals>.task.<closure>.k",
    ]
    assert three.digest != four.digest


def test_as_dict_and_diff() -> None:
    old = Fingerprint(
        "d1",
        (
            ClosureItem("p.a", "function", "src/p/a.py", 1, "x"),
            ClosureItem("p.b", "constant", "src/p/b.py", 2, "y"),
        ),
    )
    new = Fingerprint(
        "d2",
        (
            ClosureItem("p.a", "function", "src/p/a.py", 3, "z"),
            ClosureItem("p.c", "class", "src/p/c.py", 4, "w"),
        ),
    )
    assert json.loads(json.dumps(new.as_dict())) == {
        "digest": "d2",
        "items": {
            "p.a": {"kind": "function", "file": "src/p/a.py", "line": 3, "digest": "z"},
            "p.c": {"kind": "class", "file": "src/p/c.py", "line": 4, "digest": "w"},
        },
    }
    assert Fingerprint.diff(old.as_dict(), new.as_dict()) == [
        "changed: p.a (src/p/a.py:3)",
        "removed: p.b (src/p/b.py:2)",
        "added: p.c (src/p/c.py:4)",
    ]
    assert Fingerprint.diff(None, old.as_dict()) == ["added: p.a (src/p/a.py:1)", "added: p.b (src/p/b.py:2)"]
    assert Fingerprint.diff(new.as_dict(), new.as_dict()) == []
