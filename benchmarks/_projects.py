"""Throw-away projects the benchmarks run in: a package of cheap tasks and an experiment over many of them."""

from __future__ import annotations

import textwrap
from pathlib import Path

__all__ = ["make_project"]

_TASKS = '''
from misen import Experiment, Task, meta


@meta(id="BENCHLEAF1", cache=True)
def leaf(i: int) -> int:
    return i


@meta(id="BENCHSTEP1", cache=True)
def step(x: int, k: int) -> int:
    return x + k


class Cells(Experiment):
    """``n`` independent cheap cached tasks (named ``c0``, ``c1``, ...)."""

    n: int = 1000

    def tasks(self) -> dict[str, Task]:
        return {f"c{i}": Task(leaf, i=i) for i in range(self.n)}


if __name__ == "__main__":
    Cells.cli()
'''


def make_project(root: Path, *, code_changes: str = "track", executor: str = "in-process") -> Path:
    """Write a project (``src/benchpkg/exp.py``, ``.misen.toml``, ``pyproject.toml``) under ``root``."""
    pkg = root / "src" / "benchpkg"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "exp.py").write_text(textwrap.dedent(_TASKS))
    (root / "pyproject.toml").write_text('[project]\nname = "benchpkg"\nversion = "0"\n')
    (root / ".misen.toml").write_text(
        f'[executor]\ntype = "{executor}"\n\n[workspace]\ntype = "disk"\ndirectory = ".misen"\n\n'
        f'[cache]\ncode_changes = "{code_changes}"\n'
    )
    return root
