"""Task identity: canonical, deterministic, pinned; the @meta rules; bad arguments."""

from __future__ import annotations

import enum
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from misen import ASSIGNED_RESOURCES, WORK_DIR, Task, meta
from misen.errors import MisenError, MissingIdError, UnhashableArgumentError
from misen.hashing import hash_value


@meta(id="PINNED-ADD", cache=True, code_changes="ignore")
def add(a: int, b: int = 2) -> int:
    return a + b


@meta(id="PINNED-TRAIN", cache=True, code_changes="ignore", exclude={"verbose"}, defaults={"dropout": 0.0},
      versions={"dataset": {"mnist": 1}})
def train(lr: float, dataset: str, dropout: float = 0.0, verbose: bool = False, work_dir: Path = WORK_DIR) -> float:
    return lr


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Point:
    x: int
    y: int


def test_value_encoding_is_pinned() -> None:
    # Literal digests: a change here breaks every stored workspace, so it must be deliberate.
    assert hash_value(1) == "0ea037d41ecc33ab3e4f1d362c009358"
    assert hash_value("1") == "d3f88d0e8584dee7b2f10c3a8a3d9b60"
    assert hash_value({"b": [1, 2.5], "a": (None, True)}) == "6f42ff7dc7d42c2657bdb21947a30b50"


def test_task_identity_is_pinned() -> None:
    assert Task(add, a=1, b=2).hash == "0ac3723746b5470d59469f3d51744a4b"
    assert Task(add, a=1).hash == Task(add, a=1, b=2).hash == Task(add, 1, 2).hash


def test_types_never_collide() -> None:
    values = [1, 1.0, True, "1", b"1", [1], (1,), {1}, {1: 1}, None, 0, False, "", Color.RED, "red"]
    digests = [hash_value(v) for v in values]
    assert len(set(digests)) == len(values)


def test_order_independence_of_dicts_and_sets() -> None:
    assert hash_value({"a": 1, "b": 2}) == hash_value({"b": 2, "a": 1})
    assert hash_value({3, 1, 2}) == hash_value({2, 3, 1})
    assert hash_value([1, 2]) != hash_value([2, 1])


def test_declarative_types() -> None:
    assert hash_value(Color.RED) != hash_value(Color.BLUE)
    assert hash_value(Point(1, 2)) == hash_value(Point(1, 2)) != hash_value(Point(2, 1))
    assert hash_value(Path("a/b")) == hash_value(Path("a") / "b")


def test_meta_rules() -> None:
    base = Task(train, lr=0.1, dataset="cifar")
    assert Task(train, lr=0.1, dataset="cifar", verbose=True).hash == base.hash  # exclude
    assert Task(train, lr=0.1, dataset="cifar", dropout=0.0).hash == base.hash  # defaults
    assert Task(train, lr=0.1, dataset="cifar", dropout=0.5).hash != base.hash
    # versions bump only the listed value
    plain = Task(train, lr=0.1, dataset="svhn")
    bumped = Task(train, lr=0.1, dataset="mnist")

    @meta(id="PINNED-TRAIN", cache=True, code_changes="ignore", exclude={"verbose"}, defaults={"dropout": 0.0})
    def train_v0(lr: float, dataset: str, dropout: float = 0.0, verbose: bool = False, work_dir: Path = WORK_DIR) -> float:
        return lr

    assert Task(train_v0, lr=0.1, dataset="svhn").hash == plain.hash
    assert Task(train_v0, lr=0.1, dataset="mnist").hash != bumped.hash


def test_runtime_arguments_and_resources_stay_out() -> None:
    @meta(id="RT", cache=True, code_changes="ignore", resources={"cpus": 4})
    def f(x: int, res=ASSIGNED_RESOURCES) -> int:
        return x

    @meta(id="RT", cache=True, code_changes="ignore", resources={"cpus": 1, "gpus": 2})
    def g(x: int, res=None) -> int:
        return x

    assert Task(f, x=1).resources.cpus == 4
    assert Task(f, x=1).hash != Task(g, x=1).hash  # g's res=None is a real argument
    @meta(id="RT", cache=True, code_changes="ignore", resources={"cpus": 1, "gpus": 2})
    def h(x: int, res=ASSIGNED_RESOURCES) -> int:
        return x

    assert Task(f, x=1).hash == Task(h, x=1).hash


def test_nested_tasks_by_identity_and_containers() -> None:
    a1, a2 = Task(add, a=1), Task(add, a=2)
    s1 = Task(add, a=a1.T, b=0)
    assert s1.dependencies == (a1,)
    sweep = {(0.1, 256): a1.T, (0.2, 512): a2.T}
    nested = Task(add, a=[a1.T, {"x": a2.T}], b=sweep)
    assert set(nested.dependencies) == {a1, a2}
    assert Task(add, a=[a1.T, {"x": a2.T}], b=sweep).hash == nested.hash
    assert Task(add, a=[a2.T, {"x": a1.T}], b=sweep).hash != nested.hash


def test_mutating_an_argument_afterwards_changes_nothing() -> None:
    items = [1, 2]
    t = Task(add, a=items, b=0)
    h = t.hash
    items.append(t)  # would be a cycle if the task kept a reference to the list
    assert t.arguments["a"] == [1, 2]
    assert Task(add, a=[1, 2], b=0).hash == h
    assert t.dependencies == ()


def test_unhashable_argument_names_function_argument_and_type() -> None:
    class Model:
        pass

    with pytest.raises(UnhashableArgumentError) as info:
        Task(add, a=Model(), b=1)
    msg = str(info.value)
    assert "'a'" in msg and "add" in msg and "Model" in msg


def test_bad_binding() -> None:
    with pytest.raises(TypeError, match="unexpected argument 'c'"):
        Task(add, a=1, c=3)
    with pytest.raises(TypeError, match="missing a value for argument 'a'"):
        Task(add, b=3)
    with pytest.raises(MisenError, match="needs a function"):
        Task(3)  # type: ignore[arg-type]


def test_missing_id_fails_when_used_with_fill_hint() -> None:
    @meta(cache=True)
    def no_id(a: int) -> int:
        return a

    t = Task(no_id, a=1)  # lazy handles can be made (the seed's first example)
    with pytest.raises(MissingIdError) as info:
        t.result(workspace="memory")
    assert "no_id" in str(info.value) and "misen fill" in str(info.value)
    with pytest.raises(MissingIdError):
        Task(add, a=t.T).is_cached("memory")


def test_meta_validates_its_options() -> None:
    with pytest.raises(MisenError, match="exclude"):
        meta(id="X", exclude={"nope"})(lambda a: a)
    with pytest.raises(MisenError, match="unknown resource field"):
        meta(id="X", resources={"gpu": 1})(lambda a: a)


def test_hashes_agree_across_processes_and_hash_seeds(tmp_path: Path) -> None:
    script = tmp_path / "h.py"
    script.write_text(textwrap.dedent("""
        from misen import Task, meta
        @meta(id="SEED-CHECK", cache=True, code_changes="ignore")
        def f(a, b):
            return a
        t = Task(f, a={"x": {1, 2, 3}, "y": ("a", 2.5)}, b={frozenset({"p", "q"}): None})
        print(Task(f, a=t, b=[t, {"k": 1}]).hash)
    """))
    outs = {
        subprocess.run(
            [sys.executable, str(script)], env={**_env(), "PYTHONHASHSEED": seed}, capture_output=True, text=True, check=True
        ).stdout.strip()
        for seed in ("0", "1", "12345")
    }
    assert len(outs) == 1 and len(next(iter(outs))) == 32


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}


def test_T_is_typed_for_type_checkers(tmp_path: Path) -> None:
    mypy = pytest.importorskip("mypy.api")
    snippet = tmp_path / "typed.py"
    snippet.write_text(textwrap.dedent("""
        from misen import Task, meta

        @meta(id="TYPED", cache=True)
        def add(a: int, b: int) -> int:
            return a + b

        reveal_type(Task(add, a=1, b=2).T)
        reveal_type(Task(add, a=1, b=2))
    """))
    out, _err, _ = mypy.run([str(snippet), "--ignore-missing-imports", "--no-incremental"])
    import re

    assert re.search(r'typed.py:8: note: Revealed type is "(builtins\.)?int"', out), out
    assert re.search(r'typed.py:9: note: Revealed type is "misen.tasks.Task\[(builtins\.)?int\]"', out), out
