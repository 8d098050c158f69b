"""The plugin manager: built-ins through the hooks, discovery, duplicates, disabling, cheap import."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest
from misen import hookimpl
from misen.errors import MisenError
from misen.executor import Executor
from misen.testing.fixtures import start_session


@pytest.fixture(autouse=True)
def fresh_registry():
    yield
    start_session()


def test_builtins_are_registered_through_hooks() -> None:
    reg = start_session().registry
    assert reg.get("executor", "in-process").PLUGIN_NAME == "in-process"
    assert reg.get("workspace", "memory").PLUGIN_NAME == "memory"
    assert any(s.PLUGIN_NAME == "pickle" for s in reg.serializers())
    kinds = {(i.kind, i.name) for i in reg.infos()}
    assert ("executor", "in-process") in kinds and ("workspace", "memory") in kinds


def test_duplicate_names_fail_naming_both() -> None:
    class Other(Executor):
        PLUGIN_NAME = "in-process"

    mod = types.ModuleType("dupe_plugin")

    @hookimpl
    def misen_add_executors():
        return [Other]

    mod.misen_add_executors = misen_add_executors  # type: ignore[attr-defined]
    reg = start_session(mod).registry
    with pytest.raises(MisenError) as info:
        reg.executors()
    assert "InProcessExecutor" in str(info.value) and "Other" in str(info.value)


def test_misspelt_hook_is_caught() -> None:
    mod = types.ModuleType("typo_plugin")

    @hookimpl
    def misen_add_executor():  # missing "s"
        return []

    mod.misen_add_executor = misen_add_executor  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="misen_add_executor"):
        start_session(mod).registry.executors()


def test_disable_plugins_by_entry_point_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISEN_NO_ENTRY_POINTS", "1")
    reg = start_session().registry
    assert set(reg.executors()) >= {"in-process"}
    assert "local" not in reg.executors()


def test_import_misen_is_light() -> None:
    code = "import misen, sys; from misen import Task, meta; print(sorted(m for m in sys.modules if m.split('.')[0] in {'numpy','torch','s3fs','rich','pandas','misen_executor_local','misen_workspace_s3'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_importtime_has_no_heavy_modules() -> None:
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import misen"], capture_output=True, text=True, check=True
    ).stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if "|" in line}
    for heavy in ("numpy", "torch", "s3fs", "rich.live"):
        assert heavy not in imported
    assert "misen" in imported


class _Moved:
    """Stands for a library class that a new version moved to another module."""

    def __init__(self, name: str) -> None:
        self.name = name


class _MovedAgain(_Moved):
    pass


def _hasher_plugin(tag: str | None) -> types.ModuleType:
    from misen.hashing import Hasher

    class MovedHasher(Hasher):
        PLUGIN_NAME = "test.moved"
        TYPES = (f"{_Moved.__module__}.{_Moved.__qualname__}",)
        TYPE_TAG = tag

        def reduce(self, value: object) -> object:
            return ("moved", value.name)  # type: ignore[attr-defined]

    mod = types.ModuleType("moved_hasher_plugin")

    @hookimpl
    def misen_add_hashers() -> list[Hasher]:
        return [MovedHasher()]

    mod.misen_add_hashers = misen_add_hashers  # type: ignore[attr-defined]
    return mod


def test_a_hasher_type_tag_keeps_identities_when_the_class_moves() -> None:
    from misen.hashing import hash_value

    start_session(_hasher_plugin(None))
    # by default the identity names the argument's concrete type: another class is another identity
    assert hash_value(_Moved("a")) != hash_value(_MovedAgain("a"))
    start_session(_hasher_plugin("acme"))
    # with a TYPE_TAG, the tag names the type, so the same value from a moved class keeps its identity
    assert hash_value(_Moved("a")) == hash_value(_MovedAgain("a"))
    assert hash_value(_Moved("a")) != hash_value(_Moved("b"))


def test_task_result_computes_through_the_misen_compute_hook() -> None:
    from misen import MemoryWorkspace, Task, meta, run
    from misen.reporting import PlainReporter

    @meta(id="HOOKCOMP01", cache=True)
    def double(x: int) -> int:
        return 2 * x

    asked: list[list[str]] = []
    mod = types.ModuleType("compute_plugin")

    @hookimpl(tryfirst=True)
    def misen_compute(tasks: object, workspace: object, session: object) -> object:
        asked.append([t.name for t in tasks])  # type: ignore[attr-defined]
        return run(
            list(tasks), executor="in-process", workspace=workspace, reporter=PlainReporter(verbose=False)
        )  # type: ignore[arg-type, call-overload]

    mod.misen_compute = misen_compute  # type: ignore[attr-defined]
    start_session(mod)
    ws = MemoryWorkspace()
    assert Task(double, x=21).result(ws) == 42
    assert len(asked) == 1 and asked[0][0].endswith("double")
    assert Task(double, x=21).result(ws) == 42 and len(asked) == 1  # cached: the hook is not asked again


def _lazy_plugin(tmp_path, monkeypatch, name: str, source: str, lazy_args: tuple) -> types.ModuleType:
    """A plugin module registering ``Lazy(*lazy_args)`` for an executor whose class lives in module ``name``."""
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    from misen.plugins import Lazy

    mod = types.ModuleType(f"{name}_hooks")

    @hookimpl
    def misen_add_executors():
        return [Lazy(*lazy_args)]

    mod.misen_add_executors = misen_add_executors  # type: ignore[attr-defined]
    return mod


SERIAL = """
from misen.executor import Executor

class SerialExecutor(Executor):
    PLUGIN_NAME = "serial-lazy"
    ALIASES = ("serial_lazy2",)
"""


def test_a_lazy_backend_is_imported_only_when_asked_for_by_name(tmp_path, monkeypatch) -> None:
    mod = _lazy_plugin(
        tmp_path,
        monkeypatch,
        "lazy_serial_mod",
        SERIAL,
        ("serial-lazy", "lazy_serial_mod:SerialExecutor", ("serial_lazy2",)),
    )
    reg = start_session(mod).registry
    assert "serial-lazy" in reg.entries("executor") and "serial_lazy2" in reg.entries("executor")
    assert reg.get("executor", "in-process").PLUGIN_NAME == "in-process"
    assert "lazy_serial_mod" not in sys.modules  # another backend was asked for: this one stays unimported
    cls = reg.get("executor", "serial_lazy2")
    assert "lazy_serial_mod" in sys.modules
    assert cls.__name__ == "SerialExecutor" and reg.get("executor", "serial-lazy") is cls
    assert reg.executors()["serial-lazy"] is cls  # the table holds the class from now on
    assert ("executor", "serial-lazy") in {(i.kind, i.name) for i in reg.infos()}


def test_a_lazy_entry_whose_names_disagree_with_its_class_fails_naming_both(tmp_path, monkeypatch) -> None:
    mod = _lazy_plugin(
        tmp_path, monkeypatch, "lazy_wrong_mod", SERIAL, ("serial-other", "lazy_wrong_mod:SerialExecutor")
    )
    reg = start_session(mod).registry
    with pytest.raises(MisenError, match=r"registered as 'serial-other'.*class says 'serial-lazy'"):
        reg.get("executor", "serial-other")


def test_a_lazy_entry_that_fails_to_import_says_which(tmp_path, monkeypatch) -> None:
    mod = _lazy_plugin(
        tmp_path,
        monkeypatch,
        "lazy_broken_mod",
        "raise RuntimeError('broken on import')\n",
        ("serial-broken", "lazy_broken_mod:SerialExecutor"),
    )
    reg = start_session(mod).registry
    with pytest.raises(
        MisenError, match=r"executor 'serial-broken' .*failed to import: RuntimeError: broken on import"
    ):
        reg.get("executor", "serial-broken")
    assert reg.get("executor", "in-process").PLUGIN_NAME == "in-process"  # the others still work


def test_a_run_imports_only_the_backends_it_uses_and_no_cattrs(tmp_path) -> None:
    code = (
        "import sys\n"
        "from misen import Task, meta, run\n"
        "@meta(id='LAZYRUN', cache=True)\n"
        "def f(x: int) -> int:\n"
        "    return x\n"
        "run([Task(f, x=1)], executor='in-process', workspace='memory')\n"
        "print(sorted(m for m in ('misen_executor_slurm.executor', 'misen_executor_dask.executor', "
        "'misen_executor_local.executor', 'misen_workspace_s3.workspace', 'cattrs', 'concurrent.futures') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_listing_every_backend_skips_a_lazy_one_that_fails_to_import(tmp_path, monkeypatch, capsys) -> None:
    mod = _lazy_plugin(
        tmp_path,
        monkeypatch,
        "lazy_broken2_mod",
        "raise RuntimeError('broken')\n",
        ("serial-broken2", "lazy_broken2_mod:SerialExecutor"),
    )
    reg = start_session(mod).registry
    table = reg.executors()
    assert "serial-broken2" not in table and "in-process" in table
    from misen.plugins import Lazy

    assert not any(isinstance(cls, Lazy) for cls in table.values())  # every other backend is imported: classes
    assert (
        "executor 'serial-broken2' (lazy_broken2_mod:SerialExecutor) failed to import"
        in capsys.readouterr().err
    )


def test_lazy_exports_import_a_name_on_first_use_only(tmp_path, monkeypatch) -> None:
    pkg = tmp_path / "lazy_pkg_demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from misen.plugins import lazy_exports\n__getattr__ = lazy_exports(__name__, {'Thing': 'heavy'})\n"
    )
    (pkg / "heavy.py").write_text("class Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    mod = importlib.import_module("lazy_pkg_demo")
    assert "lazy_pkg_demo.heavy" not in sys.modules
    thing = mod.Thing
    assert "lazy_pkg_demo.heavy" in sys.modules and thing.__name__ == "Thing"
    assert mod.__dict__["Thing"] is thing  # kept: the next look-up is an ordinary attribute
    with pytest.raises(AttributeError, match="has no attribute 'Other'"):
        getattr(mod, "Other")  # noqa: B009
