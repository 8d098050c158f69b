"""The report file: the HTML template with the stylesheet, the scripts and the collected data inlined."""

from __future__ import annotations

import html
import json
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from misen.report._collect import Limits, collect

if TYPE_CHECKING:
    from misen.tasks import Task
    from misen.workspace import Workspace

__all__ = ["render_html", "write_report"]


def _asset(name: str) -> str:
    return (resources.files("misen.report") / name).read_text(encoding="utf-8")


def _inline_script(code: str) -> str:
    # A script element ends at the first "</script": keep that sequence out of inlined code and data.
    return code.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")


def _page_parts(data: dict[str, Any]) -> list[str]:
    """The page in pieces (template text, inlined assets, the data), to be joined or written one after another."""
    payload = json.dumps(data, separators=(",", ":"), default=str, allow_nan=False)
    payload = payload.replace("<", "\\u003c")  # no "</script>" or "<!--" can end or hide the data block
    parts = {
        "{{TITLE}}": html.escape(data.get("title") or "misen report"),
        "{{STYLE}}": _asset("report.css"),
        "{{DAGRE}}": _inline_script(_asset("vendor/dagre.min.js")),
        "{{SCRIPT}}": _inline_script(_asset("report.js")),
        "{{DATA}}": payload,
    }
    out: list[str] = []
    rest = _asset("template.html")
    while True:  # each placeholder once, in the order the template has them; nothing inserted is searched again
        found = [(rest.find(key), key) for key in parts if key in rest]
        if not found:
            break
        at, key = min(found)
        out.extend((rest[:at], parts.pop(key)))
        rest = rest[at + len(key) :]
    out.append(rest)
    return out


def render_html(data: dict[str, Any]) -> str:
    """The complete HTML page for collected report data."""
    return "".join(_page_parts(data))


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become None (shown as blank cells)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write_report(
    named: dict[str, Task[Any]],
    workspace: Workspace,
    path: str | os.PathLike[str],
    *,
    title: str = "",
    limits: Limits | None = None,
) -> Path:
    """Write the report of the named tasks (and everything they depend on) to ``path``; return its path.

    Args:
        named: The experiment's named tasks (``experiment.named_tasks()``).
        workspace: Where their results, records and logs are.
        path: The HTML file to write (its folder is created); written whole or not at all.
        title: The page's title (the experiment with its parameters).
        limits: How many previews, table rows and log characters to embed.
    """
    data = collect(named, workspace, title=title, limits=limits)
    data["tables"] = _finite(data["tables"])  # results are the only place a NaN can come from
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:  # piece by piece: the data is never copied into a whole page
            f.writelines(_page_parts(data))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
