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
        return run(list(tasks), executor="in-process", workspace=workspace, reporter=PlainReporter(verbose=False))  # type: ignore[arg-type, call-overload]

    mod.misen_compute = misen_compute  # type: ignore[attr-defined]
    start_session(mod)
    ws = MemoryWorkspace()
    assert Task(double, x=21).result(ws) == 42
    assert len(asked) == 1 and asked[0][0].endswith("double")
    assert Task(double, x=21).result(ws) == 42 and len(asked) == 1  # cached: the hook is not asked again
