"""``misen report``: one self-contained HTML file showing an experiment's graph, state, runs and results.

`write_report` gathers everything from the workspace (`misen.report._collect`) and writes a single file with
its styles, scripts (the vendored dagre layout library included) and data inlined: it opens without a network.
`tree_dot` and `tree_json` give the same graph for people who draw their own.
"""

from __future__ import annotations

from misen.report._collect import Limits, task_states
from misen.report._formats import STATE_COLOURS, tree_dot, tree_json
from misen.report._html import render_html, write_report

__all__ = ["STATE_COLOURS", "Limits", "render_html", "task_states", "tree_dot", "tree_json", "write_report"]
