"""A small project whose report shows every state: done, failed, skipped (after a failure), stale (code edited).

``demo_project.steps.Demo``: six ``score(x, y)`` tasks (``x=3, y=2`` raises), ``best`` over all of them (skipped
when one fails), ``picture`` (a 48x48 PNG as bytes, for the preview) and ``shift`` (calls the helper
``_shift``; editing it with `edit_helper` makes ``shift`` stale). ``BigDemo`` has 15 ``score`` siblings, more
than the report's grouping threshold.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_cli_project import Project, needs_disk_workspace

__all__ = ["EXECUTED_IN_FIRST_RUN", "STATES", "edit_helper", "make_demo"]

STEPS = '''
import struct
import zlib

from misen import Experiment, Task, meta


def _shift(v):
    return v + 1


def _png(size):
    raw = b"".join(
        b"\\x00" + b"".join(bytes([(x * 255) // size, (y * 255) // size, 160]) for x in range(size))
        for y in range(size)
    )

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@meta(id="SCORE4RPT1", cache=True, resources={"cpus": 1, "memory": 1})
def score(x: int, y: int) -> dict:
    print(f"scoring x={x} y={y}")
    print("<!-- a log line that looks like markup </script> -->")
    if x == 3 and y == 2:
        raise ValueError("x=3, y=2 is out of range")
    return {"value": x * 10 + y, "ratio": x / y}


@meta(id="BEST4RPT1X", cache=True)
def best(scores: dict) -> dict:
    return max(scores.values(), key=lambda s: s["value"])


@meta(id="PICT4RPT1X", cache=True)
def picture(size: int) -> bytes:
    return _png(size)


@meta(id="SHIFT4RPT1", cache=True)
def shift(k: int) -> int:
    return _shift(k)


class Demo(Experiment):
    xs: list[int] = [1, 2, 3]
    ys: list[int] = [1, 2]

    def tasks(self) -> dict[str, Task]:
        scores = {(x, y): Task(score, x=x, y=y) for x in self.xs for y in self.ys}
        return {"best": Task(best, scores=scores), "picture": Task(picture, size=48), "shifted": Task(shift, k=2)}


class BigDemo(Experiment):
    n: int = 15

    def tasks(self) -> dict[str, Task]:
        scores = {(x, 1): Task(score, x=x, y=1) for x in range(10, 10 + self.n)}
        return {"best": Task(best, scores=scores)}


if __name__ == "__main__":
    Demo.cli()
'''

#: The state each task of ``Demo`` has after `make_demo` ran it once and `edit_helper` edited ``_shift``.
STATES = {
    "score[x=1, y=1]": "done",
    "score[x=1, y=2]": "done",
    "score[x=2, y=1]": "done",
    "score[x=2, y=2]": "done",
    "score[x=3, y=1]": "done",
    "score[x=3, y=2]": "failed",
    "best": "skipped",
    "picture": "done",
    "shift": "stale",
}
#: Tasks the first run executed (every score, failed one included, picture and shift): one timeline bar each.
EXECUTED_IN_FIRST_RUN = 8

MISEN_TOML = """
[executor]
type = "in-process"

[workspace]
type = "disk"
directory = ".misen"
"""


def make_demo(root: Path, pycache: Path) -> Project:
    """Write the project (not run yet)."""
    needs_disk_workspace()
    project = Project(root, pycache)
    project.write("pyproject.toml", '[project]\nname = "demo-project"\nversion = "0.1.0"\n')
    project.write(".misen.toml", MISEN_TOML)
    project.write("src/demo_project/__init__.py", "")
    (root / "src/demo_project/steps.py").write_text(STEPS.lstrip("\n"))
    project.env["PYTHONPATH"] = str(root / "src")
    return project


def edit_helper(project: Project) -> None:
    """Change what ``_shift`` computes, so ``shift``'s stored result becomes stale."""
    path = project.root / "src/demo_project/steps.py"
    path.write_text(path.read_text().replace("return v + 1", "return v + 2"))
