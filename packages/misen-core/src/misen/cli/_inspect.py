"""What the inspection commands show: each task's status in a workspace, the task tree, counts and logs."""

from __future__ import annotations

import types
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from misen import cache
from misen.cli._display import STATUS_MARKS, STATUS_STYLES, Output
from misen.labels import task_labels
from misen.tasks import Task, iter_graph

if TYPE_CHECKING:
    from misen.workspace import Workspace

__all__ = ["Statuses", "render_list", "render_tree"]

_RANK = types.MappingProxyType({"done": 0, "stale": 1, "pending": 2, "failed": 3})


class Statuses:
    """Status of every task in a graph: ``done``, ``stale``, ``pending`` or ``failed``.

    A cacheable task's status is its workspace's (`misen.cache.statuses`, asked once for the whole graph), except
    that a pending task with a failed dependency is failed too (it cannot run until that is fixed). A task that is
    not cached is as good as its dependencies (the worst of them: failed over pending over stale), and failed if its own
    last attempt failed once they are all done.
    """

    def __init__(self, roots: Iterable[Task[Any]], workspace: Workspace) -> None:
        self.workspace = workspace
        self.roots = list(roots)
        self.status: dict[bytes, str] = {}
        self.order: list[Task[Any]] = list(iter_graph(self.roots))
        # Every cacheable task's own status in one batched query: a workspace that lists its records (S3)
        # answers for thousands of tasks in a few requests.
        self._own = cache.statuses(workspace, [t for t in self.order if t.cacheable], check_files=True)
        for task in self.order:
            self.status[task._id_bytes] = self._compute(task)
        self.labels = task_labels(self.order)

    def label(self, task: Task[Any]) -> str:
        """The task's label among the graph's tasks (`misen.labels.task_labels`)."""
        return self.labels.get(task.hash) or task.name

    def blocked(self, task: Task[Any]) -> bool:
        """Failed only because a dependency failed (the task itself never ran)."""
        found = self.failure_of(task) if self.of(task) == "failed" else None
        return found is not None and found[0] != task

    def _compute(self, task: Task[Any]) -> str:
        worst = "done"
        for dep in task.dependencies:
            s = self.status[dep._id_bytes]
            if _RANK[s] > _RANK[worst]:
                worst = s
        if task.cacheable:
            own = self._own[task.hash]
            # A task that cannot run because a dependency failed shows as failed (with that dependency's error).
            return "failed" if own == "pending" and worst == "failed" else own
        if worst == "done" and self.workspace.get_record("failure", task.hash) is not None:
            return "failed"
        return worst

    def of(self, task: Task[Any]) -> str:
        return self.status[task._id_bytes]

    def counted(self) -> list[Task[Any]]:
        """The tasks ``count`` and ``incomplete`` consider: every cacheable one, and the named roots."""
        roots = {t._id_bytes for t in self.roots}
        return [t for t in self.order if t.cacheable or t._id_bytes in roots]

    def failure_of(self, task: Task[Any]) -> tuple[Task[Any], dict[str, Any]] | None:
        """The failure record behind a failed status: the task's own, or its first failed dependency's."""
        stack, seen = [task], set()
        while stack:
            t = stack.pop(0)
            if t._id_bytes in seen:
                continue
            seen.add(t._id_bytes)
            rec = (
                self.workspace.get_record("failure", t.hash)
                if self.status.get(t._id_bytes) == "failed"
                else None
            )
            if rec is not None:
                return t, rec
            stack.extend(d for d in t.dependencies if self.status.get(d._id_bytes) == "failed")
        return None


def mark(status: str) -> tuple[str, str]:
    return STATUS_MARKS[status], STATUS_STYLES[status]


def failure_lines(out: Output, statuses: Statuses, task: Task[Any], indent: str) -> None:
    found = statuses.failure_of(task)
    if found is None:
        return
    culprit, rec = found
    prefix = "" if culprit == task else f"{statuses.label(culprit)}: "
    error = str(rec.get("error") or rec.get("status") or "failed").strip().splitlines()
    out.line(indent, ("error: ", "red"), prefix + (error[-1] if error else "failed"))
    if rec.get("log"):
        out.line(indent, ("log: ", "dim"), str(rec["log"]))


def render_list(
    out: Output, named: dict[str, Task[Any]], statuses: Statuses, *, show_all: bool = False
) -> None:
    width = max((len(n) for n in named), default=0)
    for name, task in named.items():
        status = statuses.of(task)
        if status == "pending" and statuses.workspace.lock_holder(task.hash) is not None:
            status = "running"
        out.line(mark(status), " ", (name.ljust(width), "bold"), "  ", (statuses.label(task), "dim"))
        if status == "failed":
            failure_lines(out, statuses, task, " " * (width + 4))
    if show_all:
        named_ids = {t._id_bytes for t in named.values()}
        others = [t for t in statuses.order if t._id_bytes not in named_ids]
        if others:
            out.line(("other tasks:", "bold"))
            for task in others:
                status = statuses.of(task)
                out.line("  ", mark(status), " ", statuses.label(task))
                if status == "failed":
                    failure_lines(out, statuses, task, "      ")


def render_tree(out: Output, named: dict[str, Task[Any]], statuses: Statuses, depth: int | None) -> None:
    """The named tasks and their dependencies as an indented tree; a task shown once is not expanded again."""
    expanded: set[bytes] = set()

    def walk(task: Task[Any], prefix: str, level: int) -> None:
        deps = list(task.dependencies)
        if depth is not None and level >= depth:
            return
        for i, dep in enumerate(deps):
            last = i == len(deps) - 1
            branch = "└── " if last else "├── "
            again = dep._id_bytes in expanded and bool(dep.dependencies)
            note = ("  (see above)", "dim") if again else ""
            out.line(prefix + branch, mark(statuses.of(dep)), " ", statuses.label(dep), note)
            if not again:
                expanded.add(dep._id_bytes)
                walk(dep, prefix + ("    " if last else "│   "), level + 1)

    for name, task in named.items():
        again = task._id_bytes in expanded and bool(task.dependencies)
        out.line(
            (name, "bold"),
            " ",
            mark(statuses.of(task)),
            " ",
            statuses.label(task),
            ("  (see above)", "dim") if again else "",
        )
        if not again:
            expanded.add(task._id_bytes)
            walk(task, "", 1)
