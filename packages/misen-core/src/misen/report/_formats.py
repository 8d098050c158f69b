"""The task graph as Graphviz DOT and as JSON (``tree --format dot|json``), for people who draw their own."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from misen.labels import task_labels
from misen.report._collect import task_states
from misen.tasks import Task, iter_graph

if TYPE_CHECKING:
    from misen.workspace import Workspace

__all__ = ["STATE_COLOURS", "graph_data", "tree_dot", "tree_json"]

#: The fill colour of each state, in the report and in DOT output alike.
STATE_COLOURS = MappingProxyType(
    {
        "done": "#4caf50",
        "stale": "#f2b01e",
        "pending": "#c4c9d0",
        "running": "#2196f3",
        "failed": "#e53935",
        "skipped": "#9c6ade",
    }
)


def graph_data(named: dict[str, Task[Any]], ws: Workspace) -> dict[str, Any]:
    """``{"named": {name: hash}, "tasks": [{"id", "label", "function", "state", "cacheable", "deps"}]}``,
    dependencies before dependents."""
    tasks = list(iter_graph(named.values()))
    labels = task_labels(tasks)
    states = task_states(tasks, ws)
    return {
        "named": {name: task.hash for name, task in named.items()},
        "tasks": [
            {
                "id": t.hash,
                "label": labels.get(t.hash, t.name),
                "function": t.name,
                "state": states[t.hash],
                "cacheable": t.cacheable,
                "deps": [d.hash for d in t.dependencies],
            }
            for t in tasks
        ],
    }


def tree_json(named: dict[str, Task[Any]], ws: Workspace) -> str:
    """The graph as indented JSON (`graph_data`)."""
    return json.dumps(graph_data(named, ws), indent=2)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def tree_dot(named: dict[str, Task[Any]], ws: Workspace) -> str:
    """The graph in Graphviz's DOT language, left to right, each task filled with its state's colour."""
    data = graph_data(named, ws)
    by_id = {v: k for k, v in data["named"].items()}
    lines = [
        "digraph misen {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
    ]
    for t in data["tasks"]:
        label_q = _quote(t["label"] + (f"\n[{by_id[t['id']]}]" if t["id"] in by_id else ""))
        lines.append(
            f"  {_quote(t['id'][:16])} [label={label_q}, fillcolor={_quote(STATE_COLOURS[t['state']])}, "
            f"tooltip={_quote(t['state'])}];"
        )
    for t in data["tasks"]:
        for dep in t["deps"]:
            lines.append(f"  {_quote(dep[:16])} -> {_quote(t['id'][:16])};")
    lines.append("}")
    return "\n".join(lines) + "\n"
