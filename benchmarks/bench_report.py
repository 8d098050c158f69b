"""Benchmark of ``misen report`` on a 10,000-task sweep: time to write the file, and for Chromium to render it.

Run ``python benchmarks/bench_report.py [--n 10000] [--dir PATH]``; prints one JSON object. `bench_report` is what
``benchmarks/run.py`` calls.

A project with a sweep of ``n`` cheap cached tasks (``score(i, j)`` over a grid, all feeding one ``summary``
task) is computed once with the in-process executor into a disk workspace. Then:

- write: in a fresh interpreter, ``write_report`` for the experiment (gathering states, provenance, logs, result
  sizes, previews and the sweep table from the workspace, rendering and writing the HTML): the first call, and
  the best of three (wall and CPU time); the interpreter start, imports and the task graph are measured apart;
- render: a fresh headless Chromium (Debian's ``chromium`` with ``chromium-driver``, through selenium) opens the
  file, and the time until the page's script has drawn the graph is taken from the browser's own clock
  (navigation start to the ``data-ready`` mark), then the time to draw the 10,000-row task table's first page
  and the timeline of the run's 10,000 bars.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from _projects import fresh_python

__all__ = ["bench_report"]

_SWEEP = '''
from misen import Experiment, Task, meta


@meta(id="BENCHSCORE", cache=True)
def score(i: int, j: int) -> dict:
    print(f"score {i} {j}")
    return {"value": (i * 7919 + j * 104729) % 1000 / 1000, "i2": i * i}


@meta(id="BENCHSUMMR", cache=True)
def summary(scores: dict) -> dict:
    best = max(scores, key=lambda k: scores[k]["value"])
    return {"best": list(best), "value": scores[best]["value"]}


class Sweep(Experiment):
    rows: int = 100
    cols: int = 100

    def tasks(self) -> dict[str, Task]:
        scores = {(i, j): Task(score, i=i, j=j) for i in range(self.rows) for j in range(self.cols)}
        return {"summary": Task(summary, scores=scores)}
'''

_WRITE = """
import json, sys, time
t0 = time.perf_counter()
from misen.report import write_report
from misen.workspace import resolve_workspace
from benchsweep.sweep import Sweep
t1 = time.perf_counter()
exp = Sweep(rows=int(sys.argv[1]), cols=int(sys.argv[2]))
named = exp.named_tasks()
ws = resolve_workspace(None)
t2 = time.perf_counter()
times, cpu = [], []
for _ in range(3):
    a, c = time.perf_counter(), time.process_time()
    path = write_report(named, ws, sys.argv[3], title=repr(exp))
    times.append(time.perf_counter() - a)
    cpu.append(time.process_time() - c)
print(json.dumps({"import_s": t1 - t0, "graph_s": t2 - t1, "first_write_s": times[0], "write_s": min(times),
                  "write_cpu_s": min(cpu), "bytes": path.stat().st_size}))
"""

_RUN = """
import sys
from benchsweep.sweep import Sweep
report = Sweep(rows=int(sys.argv[1]), cols=int(sys.argv[2])).run(executor="in-process")
assert report.ok, report.failed
print("{}")
"""


def _grid(n: int) -> tuple[int, int]:
    rows = max(1, int(n**0.5))
    return rows, max(1, n // rows)


def _project(root: Path) -> None:
    pkg = root / "src" / "benchsweep"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sweep.py").write_text(textwrap.dedent(_SWEEP))
    (root / "pyproject.toml").write_text('[project]\nname = "benchsweep"\nversion = "0"\n')
    (root / ".misen.toml").write_text('[executor]\ntype = "in-process"\n\n[workspace]\ntype = "disk"\ndirectory = ".misen"\n')


def _render(html: Path) -> dict[str, Any]:
    """Browser-side times: page ready (navigation start to the script's ready mark), table page, timeline."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not browser or not driver:
        return {"render_s": None, "why": "chromium or chromedriver is not installed"}
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="misen-bench-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,900",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    session = webdriver.Chrome(service=Service(driver), options=options)
    try:
        t0 = time.perf_counter()
        session.get(html.as_uri())  # returns after the load event: the inline scripts have run
        wall = time.perf_counter() - t0
        ready = session.execute_script("return document.body.getAttribute('data-ready')")
        if ready != "1":
            raise RuntimeError("the report's script did not finish")
        page_ms = session.execute_script(
            "const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime;"
        )
        tabs = session.execute_script(
            "const t = []; for (const name of ['tasks', 'timeline']) { const a = performance.now();"
            " misenReport.showTab(name); document.body.offsetHeight; t.push(performance.now() - a); } return t;"
        )
        bars = session.execute_script("return document.querySelectorAll('#timeline rect.bar').length")
    finally:
        session.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return {"render_s": page_ms / 1000, "get_wall_s": wall, "table_s": tabs[0] / 1000, "timeline_s": tabs[1] / 1000,
            "bars": bars}


def bench_report(n: int = 10_000, directory: str | None = None) -> dict[str, Any]:
    """Compute a sweep of ``n`` tasks once, then time writing its report and Chromium rendering it."""
    with tempfile.TemporaryDirectory(prefix="misen-bench-report-", dir=directory) as tmp:
        root = Path(tmp)
        _project(root)
        rows, cols = _grid(n)
        t0 = time.perf_counter()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("MISEN_")}, "PYTHONPATH": str(root / "src")}
        fresh_python(_RUN, str(rows), str(cols), cwd=root, env=env)
        setup = time.perf_counter() - t0
        html = root / "report.html"
        figures = fresh_python(_WRITE, str(rows), str(cols), str(html), cwd=root, env=env)
        figures.update(_render(html))
        figures.update(tasks=rows * cols + 1, setup_s=round(setup, 1))
        return figures


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    print(json.dumps(bench_report(args.n, args.dir)))
