"""`misen.labels.task_labels`: siblings told apart by the arguments that differ, inherited ones included."""

from __future__ import annotations

from misen import Task, meta
from misen.labels import graph_labels, task_labels


@meta(id="LBLSPLIT01", cache=True)
def split(seed: int = 0) -> list[int]:
    return [seed]


@meta(id="LBLTRAIN01", cache=True)
def train(data: list[int], c: float, gamma: float, note: str = "x") -> float:
    return c * gamma


@meta(id="LBLEVAL001", cache=True)
def evaluate(model: float, data: list[int]) -> float:
    return model


@meta(id="LBLBEST001", cache=True)
def best(metrics: dict[tuple[float, float], float]) -> float:
    return max(metrics.values())


def grid(cs: list[float], gammas: list[float], seed: int = 0) -> dict[tuple[float, float], Task[float]]:
    data = Task(split, seed=seed)
    return {
        (c, g): Task(evaluate, model=Task(train, data=data, c=c, gamma=g), data=data) for c in cs for g in gammas
    }


def test_siblings_show_only_the_arguments_that_differ_including_inherited_ones() -> None:
    metrics = grid([0.3, 1.0], [0.01, 0.1])
    labels = graph_labels([Task(best, metrics=metrics)])
    evals = sorted(labels[t.hash] for t in metrics.values())
    assert evals == [
        "evaluate[c=0.3, gamma=0.01]",
        "evaluate[c=0.3, gamma=0.1]",
        "evaluate[c=1.0, gamma=0.01]",
        "evaluate[c=1.0, gamma=0.1]",
    ]
    # Functions with one task in the set are shown by name: nothing to tell apart.
    assert labels[Task(split, seed=0).hash] == "split"
    assert labels[Task(best, metrics=metrics).hash] == "best"
    assert labels[Task(train, data=Task(split, seed=0), c=0.3, gamma=0.1).hash] == "train[c=0.3, gamma=0.1]"


def test_one_varying_argument_and_an_upstream_one() -> None:
    a = grid([0.3], [0.1], seed=0)[(0.3, 0.1)]
    b = grid([0.3], [0.1], seed=1)[(0.3, 0.1)]
    labels = task_labels([a, b])
    assert {labels[a.hash], labels[b.hash]} == {"evaluate[seed=0]", "evaluate[seed=1]"}


def test_long_values_are_elided_between_elements_never_inside_one() -> None:
    long_a = Task(split, seed=0)
    t1 = Task(evaluate, model=1.0, data=list(range(100)))
    t2 = Task(evaluate, model=1.0, data=list(range(1, 101)))
    labels = task_labels([t1, t2, long_a])
    assert labels[t1.hash] == "evaluate[data=[0, 1, 2, 3, … 96 more]]"
    assert labels[t2.hash] == "evaluate[data=[1, 2, 3, 4, … 96 more]]"
    text = "a-very-long-string-value-" * 4
    s1 = Task(train, data=[0], c=1.0, gamma=1.0, note=text)
    s2 = Task(train, data=[0], c=1.0, gamma=1.0, note=text + "!")
    labels = task_labels([s1, s2])
    assert labels[s1.hash] == f"train[note={text!r}]"  # shown whole: a token is never cut


def test_siblings_nothing_tells_apart_get_a_short_hash() -> None:
    t1 = Task(evaluate, model=1.0, data=[*range(10)])
    t2 = Task(evaluate, model=1.0, data=[*range(4), 99, *range(5, 10)])
    labels = task_labels([t1, t2])
    assert labels[t1.hash] != labels[t2.hash]
    assert labels[t1.hash].startswith("evaluate[data=[0, 1, 2, 3, … 6 more], #")
    assert labels[t2.hash].endswith(f"#{t2.hash[:6]}]")


def test_every_task_counts_once() -> None:
    t = Task(split, seed=3)
    assert task_labels([t, t, Task(split, seed=3)]) == {t.hash: "split"}


def test_a_run_from_python_shows_each_unit_by_its_label() -> None:
    import io

    from misen import MemoryWorkspace, run
    from misen.reporting import PlainReporter

    metrics = grid([0.3, 1.0], [0.01, 0.1])
    out = io.StringIO()
    report = run(
        Task(best, metrics=metrics), executor="in-process", workspace=MemoryWorkspace(), reporter=PlainReporter(out)
    )
    assert report.ok
    text = out.getvalue()
    for c in (0.3, 1.0):
        for g in (0.01, 0.1):
            assert f"evaluate[c={c}, gamma={g}]" in text
    assert "Task(" not in text
