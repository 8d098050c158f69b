"""Planning reads the roots' task records in one batch (`Workspace.get_records`: a listing on S3), and decides
exactly as reading them one by one would."""

from __future__ import annotations

from typing import Any

from misen import Task, meta, run
from misen._builtin.memory import MemoryWorkspace
from misen.runner import build_plan


@meta(id="PLANBATCH1", cache=True)
def square(x: int) -> int:
    return x * x


@meta(id="PLANBATCH2", cache=True)
def total(xs: list) -> int:
    return sum(xs)


class Counting(MemoryWorkspace):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.single: list[tuple[str, str]] = []
        self.batches: list[tuple[str, int]] = []

    def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        self.single.append((kind, key))
        return super().get_record(kind, key)

    def get_records(self, kind: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        self.batches.append((kind, len(keys)))
        out = {}
        for key in keys:
            rec = super().get_record(kind, key)
            if rec is not None:
                out[key] = rec
        return out


def test_the_roots_records_are_read_in_one_batch_and_decide_as_before() -> None:
    ws = Counting()
    roots = [Task(square, x=i) for i in range(20)]
    run(roots[:8], executor="in-process", workspace=ws)  # 8 of the 20 cached
    ws.single.clear()
    plan, n_cached, total_tasks = build_plan(roots, ws)
    assert ("task", 20) in ws.batches
    assert not [k for k in ws.single if k[0] == "task"]  # no root read again one by one
    assert (n_cached, total_tasks) == (8, 20)
    assert sorted(u.root.arguments["x"] for u in plan.units.values()) == list(range(8, 20))


def test_dependencies_outside_the_batch_are_still_read() -> None:
    ws = Counting()
    leaves = [Task(square, x=i) for i in range(3)]
    run(leaves[:2], executor="in-process", workspace=ws)
    roots = [Task(total, xs=leaves), Task(total, xs=leaves[:2])]
    plan, n_cached, total_tasks = build_plan(roots, ws)
    assert (n_cached, total_tasks) == (2, 5)
    assert {u.root.name for u in plan.units.values()} == {"square", "total"}
    assert len(plan.units) == 3  # the two roots and the one leaf without a result
