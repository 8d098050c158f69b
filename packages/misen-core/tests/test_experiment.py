"""`Experiment` in Python: typed parameters, mutable defaults, validation, named tasks, nesting, run, cli."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import ClassVar, Literal, Optional

import attrs
import pytest
from misen import Experiment, InProcessExecutor, MemoryWorkspace, Task, cache, meta
from misen.errors import MisenError
from misen.experiment import ParameterError, UnknownTaskError

CALLS: list[str] = []


@meta(id="EXPTRAIN01", cache=True)
def train(lr: float, dim: int) -> dict:
    CALLS.append(f"train {lr} {dim}")
    return {"lr": lr, "dim": dim}


@meta(id="EXPEVAL001", cache=True)
def evaluate(trained_model: dict) -> float:
    CALLS.append("evaluate")
    if trained_model["lr"] < 0:
        raise ValueError("negative learning rate")
    return trained_model["lr"] * trained_model["dim"]


@meta(id="EXPSWEEP01", cache=True)
def summarize(metrics: dict) -> list:
    return sorted(metrics.items())


class Training(Experiment):
    lr: float = 0.001
    dim: int = 256

    def tasks(self) -> dict[str, Task]:
        t = Task(train, lr=self.lr, dim=self.dim)
        return {"model": t, "metrics": Task(evaluate, trained_model=t.T)}


class Sweep(Experiment):
    lrs: list[float] = [0.001, 0.01]
    dims: list[int] = [256, 512]

    def tasks(self) -> dict[str, Task]:
        metrics = {(lr, dim): Training(lr=lr, dim=dim)["metrics"].T for lr in self.lrs for dim in self.dims}
        return {"summary": Task(summarize, metrics=metrics)}


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Typed(Experiment):
    n: int = 1
    x: float = 1.0
    color: Color = Color.RED
    mode: Literal["a", "b"] = "a"
    seed: Optional[int] = None  # noqa: UP045 - Optional is what is tested
    pair: tuple[int, str] = (1, "a")
    table: dict[str, list[int]] = {"a": [1]}
    path: Path = Path("p")
    note: ClassVar[str] = "not a parameter"

    def tasks(self) -> dict[str, Task]:
        return {}


def test_mutable_defaults_are_copied_per_instance() -> None:
    a, b = Sweep(), Sweep()
    a.lrs.append(1.0)
    assert b.lrs == [0.001, 0.01]
    assert Sweep().lrs == [0.001, 0.01]
    t1, t2 = Typed(), Typed()
    t1.table["a"].append(2)
    assert t2.table == {"a": [1]}


def test_attrs_class_with_repr_eq_and_keyword_init() -> None:
    assert attrs.has(Training)
    assert repr(Training(lr=0.1)) == "Training(lr=0.1, dim=256)"
    assert Training(lr=0.1) == Training(lr=0.1, dim=256)
    assert Training(lr=0.1) != Training(lr=0.2)
    assert Training(lr=1) == Training(lr=1.0)  # an int is a float, and is stored as one
    assert isinstance(Training(lr=1).lr, float)
    assert hash(Training(lr=0.1)) == hash(Training(lr=0.1))
    with pytest.raises(ParameterError, match=r"takes parameters by name only"):
        Training(0.1)  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Training().lr = 3.0  # type: ignore[misc]
    assert [f.name for f in attrs.fields(Typed)] == [
        "n",
        "x",
        "color",
        "mode",
        "seed",
        "pair",
        "table",
        "path",
    ]


def test_type_errors_name_class_parameter_and_type() -> None:
    cases = [
        (dict(lr="fast"), r"Training\.lr must be float, got 'fast' \(str\)"),
        (dict(dim=2.5), r"Training\.dim must be int, got 2\.5"),
        (dict(dim=True), r"Training\.dim must be int, got True"),
        (dict(lrr=0.1), r"Training has no parameter 'lrr' \(its parameters: lr, dim\)"),
    ]
    for kwargs, pattern in cases:
        with pytest.raises(ParameterError, match=pattern):
            Training(**kwargs)
    with pytest.raises(ParameterError, match=r"Sweep\.lrs must be list\[float\], got \[0\.1, 'x'\]"):
        Sweep(lrs=[0.1, "x"])
    with pytest.raises(ParameterError, match=r"Typed\.mode must be Literal\['a', 'b'\]"):
        Typed(mode="c")
    with pytest.raises(ParameterError, match=r"Typed\.seed must be int \| None"):
        Typed(seed="1")
    with pytest.raises(ParameterError, match=r"Typed\.pair must be tuple\[int, str\]"):
        Typed(pair=(1, 2))
    with pytest.raises(ParameterError, match=r"Typed\.color must be Color"):
        Typed(color="green")
    assert isinstance(ParameterError("x"), TypeError) and isinstance(ParameterError("x"), MisenError)


def test_values_are_coerced_where_lossless() -> None:
    t = Typed(color="blue", seed=None, pair=[2, "b"], path="q", n=3)
    assert t.color is Color.BLUE and t.pair == (2, "b") and t.path == Path("q")
    assert Typed(color="BLUE").color is Color.BLUE
    assert Sweep(lrs=(1, 2)).lrs == [1.0, 2.0]


def test_subclasses_inherit_and_override_defaults() -> None:
    class Bigger(Training):
        dim = 1024
        depth: int = 3

    assert repr(Bigger()) == "Bigger(lr=0.001, dim=1024, depth=3)"
    with pytest.raises(ParameterError, match=r"Bigger\.dim must be int"):
        Bigger(dim="x")
    assert Bigger()["model"] == Task(train, lr=0.001, dim=1024)


def test_a_parameter_without_default_is_an_error() -> None:
    with pytest.raises(ParameterError, match=r"NoDefault\.lr: an experiment parameter needs a default value"):

        class NoDefault(Experiment):
            lr: float

            def tasks(self) -> dict[str, Task]:
                return {}


def test_getitem_and_unknown_names() -> None:
    exp = Training(lr=0.1)
    assert exp["model"] == Task(train, lr=0.1, dim=256)
    assert exp["metrics"].dependencies == (exp["model"],)
    assert "metrics" in exp and "nope" not in exp
    with pytest.raises(KeyError) as info:
        exp["nope"]
    assert isinstance(info.value, UnknownTaskError)
    assert str(info.value) == "Training has no task 'nope' (its tasks: 'model', 'metrics')"


def test_tasks_must_be_a_dict_of_tasks() -> None:
    class Broken(Experiment):
        def tasks(self) -> dict[str, Task]:
            return {"x": 3}  # type: ignore[dict-item]

    with pytest.raises(MisenError, match=r"Broken\.tasks\(\): 'x' must be a Task, got int"):
        Broken()["x"]

    class Missing(Experiment):
        pass

    with pytest.raises(MisenError, match=r"Missing must define tasks"):
        Missing().named_tasks()


def test_run_reports_and_caches() -> None:
    ws = MemoryWorkspace(name="test_run_reports_and_caches")
    CALLS.clear()
    report = Training(lr=0.5, dim=2).run(executor="in-process", workspace=ws)
    assert report.ok
    assert CALLS == ["train 0.5 2", "evaluate"]
    assert Training(lr=0.5, dim=2)["metrics"].result(workspace=ws) == 1.0
    assert Training(lr=0.5, dim=2).result("model", ws) == {"lr": 0.5, "dim": 2}
    CALLS.clear()
    again = Training(lr=0.5, dim=2).run(executor=InProcessExecutor(), workspace=ws)
    assert again.ok and CALLS == [] and again.outcomes == {}


def test_a_failing_task_does_not_raise_but_the_report_says_so() -> None:
    ws = MemoryWorkspace(name="test_a_failing_task")
    report = Training(lr=-1.0).run(executor="in-process", workspace=ws)
    assert not report.ok
    ((unit, outcome),) = report.failed
    assert unit.root == Training(lr=-1.0)["metrics"]
    assert "negative learning rate" in (outcome.error or "")
    assert cache.status(ws, Training(lr=-1.0)["metrics"]) == "failed"
    assert cache.status(ws, Training(lr=-1.0)["model"]) == "done"


def test_run_only_some_names() -> None:
    ws = MemoryWorkspace(name="test_run_only_some_names")
    CALLS.clear()
    assert Training(lr=0.25).run("in-process", ws, names=["model"]).ok
    assert CALLS == ["train 0.25 256"]
    with pytest.raises(UnknownTaskError):
        Training().run("in-process", ws, names=["nope"])


def test_sweep_nests_experiments() -> None:
    ws = MemoryWorkspace(name="test_sweep_nests_experiments")
    sweep = Sweep(lrs=[0.5, 1.0], dims=[2])
    assert sweep.run(executor="in-process", workspace=ws).ok
    assert sweep["summary"].result(workspace=ws) == [((0.5, 2), 1.0), ((1.0, 2), 2.0)]
    # The sweep's metrics are the very tasks of the nested experiments: their results are shared.
    assert Training(lr=0.5, dim=2)["metrics"].is_cached(workspace=ws)


def test_unknown_executor_raises_a_clear_error() -> None:
    with pytest.raises(MisenError, match=r"unknown executor type 'warp-drive'"):
        Training().run(executor="warp-drive", workspace=MemoryWorkspace(name="x"))


def test_cli_is_a_classmethod_and_an_instance_method(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["count", "--workspace-type", "memory", "--executor-type", "in-process"]
    assert Training.cli(args, standalone=False) == 0
    assert capsys.readouterr().out.splitlines() == ["Completed 0 of 2 tasks", "(2 pending)"]
    config = Training(lr=0.5, dim=4)
    assert (
        config.cli(["run", "--workspace-type", "memory", "--executor-type", "in-process"], standalone=False)
        == 0
    )
    capsys.readouterr()
    # The memory workspace lives as long as this process: the configured instance's tasks are now done.
    assert config.cli(["count", "--workspace-type", "memory"], standalone=False) == 0
    assert capsys.readouterr().out.splitlines() == ["Completed 2 of 2 tasks"]
    assert config.cli(["result", "metrics", "--workspace-type", "memory"], standalone=False) == 0
    assert capsys.readouterr().out.strip() == "2.0"
    assert Training.cli(["--lr", "x"], standalone=False) == 2
    assert "Invalid value for '--lr'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        Training.cli(["result", "nope", "--workspace-type", "memory"])
    assert info.value.code == 1


def test_field_help_and_attrs_fields_are_kept(capsys: pytest.CaptureFixture[str]) -> None:
    class Documented(Experiment):
        lr: float = attrs.field(default=0.1, metadata={"help": "The learning rate."})
        widths: list[int] = attrs.field(factory=lambda: [1, 2], metadata={"help": "Layer widths"})

        def tasks(self) -> dict[str, Task]:
            return {}

    a = Documented()
    a.widths.append(3)
    assert Documented().widths == [1, 2]
    with pytest.raises(ParameterError, match=r"Documented\.lr must be float"):
        Documented(lr="x")
    with pytest.raises(SystemExit):
        Documented.cli(["--help"])
    out = capsys.readouterr().out
    assert "The learning rate; default: 0.1" in out
    assert "Layer widths" in out and "default: 1,2" in out
