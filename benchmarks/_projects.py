"""What the benchmarks share: throw-away projects to run in (a package of cheap tasks and an experiment over many
of them), a fresh interpreter per measured step, dropping the page cache, and best-of-N rounds.

The store/load benchmarks of large results (``bench_numpy``, ``bench_xarray``, ``bench_heavy``) are one shape:
each round, in a fresh temporary folder, the library saves the value, misen stores it, the page cache is dropped,
the library loads its file, the page cache is dropped, misen loads its result; every step in its own
interpreter (its peak memory is its own, nothing is cached in-process between steps). Rounds alternate the two
so that a shared disk's slow minutes fall on both, and the best round of each step is kept.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["alternating_rounds", "best", "drop_caches", "fresh_python", "make_project", "paired_ratios", "ratio"]

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


def fresh_python(
    code: str, *args: str, cwd: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Run ``code`` (dedented) in a fresh interpreter; it prints one JSON object as its last line, returned.

    ``env`` defaults to this process's environment without ``MISEN_*`` variables. A failing step raises
    ``RuntimeError`` with the end of its output.
    """
    if env is None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MISEN_")}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], cwd=cwd, env=dict(env), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark step {args[:2]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def drop_caches() -> bool:
    """Write back and drop the page cache (root only), so that the next read comes from the disk; whether it could."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def best(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The fastest of a step's rounds (by its ``"s"``)."""
    return min(rounds, key=lambda r: r["s"])


def paired_ratios(peer: Sequence[dict[str, Any]], ours: Sequence[dict[str, Any]]) -> list[float]:
    """misen's time over the peer's, round by round (a round's two steps ran within the same minute)."""
    return [round(b["s"] / a["s"], 2) for a, b in zip(peer, ours, strict=True)]


def ratio(peer: Sequence[dict[str, Any]], ours: Sequence[dict[str, Any]]) -> float:
    """The median of `paired_ratios`: what the large store/load benchmarks report as misen's ratio.

    On a virtual machine one round of either side can be several times faster than the rest (see
    `alternating_rounds`), and the best round of each side would then compare a lucky round with an ordinary
    one; each round's own ratio compares two steps taken under the same conditions.
    """
    return round(statistics.median(paired_ratios(peer, ours)), 2)


def alternating_rounds(
    step: Callable[[str, str, dict[str, dict[str, Any]]], dict[str, Any]],
    plan: Sequence[tuple[str, bool]],
    *,
    repeat: int,
    directory: str | None = None,
    cold: bool = True,
    settle: float = 5.0,
) -> tuple[dict[str, list[dict[str, Any]]], bool]:
    """Run ``plan`` ``repeat`` times, each round in a fresh temporary folder; return every step's rounds.

    Every other round swaps each pair of steps (the library's save with misen's store, its load with misen's):
    on this virtual machine the order of two 1 GiB writes changes their times, so a fixed order would charge the
    difference to one side. The disk is also synced before every step
    (untimed), so that no step starts while the previous one's data is still being written back, and then left
    alone for ``settle`` seconds. On this virtual machine a 1 GiB write that starts at once after the step
    before it took anywhere from 0.6 to 3.9 s, and 3.2 to 3.9 s, whichever side wrote it, when it started 3 s or
    more after the last step. The machine reports free memory to its host (virtio-balloon free page reporting),
    and memory freed more than about 2 s ago costs a host page fault at its next touch, which is part of the
    story (see docs/performance.md, seventh round). The pause gives every step the same start.

    Args:
        step: ``step(name, folder, earlier)`` measures one step (in a fresh interpreter, e.g. with
            `fresh_python`) and returns its figures; ``earlier`` holds this round's finished steps by name (a load
            needs the hash its store returned).
        plan: ``(name, drop)`` pairs in order; ``drop``: drop the page cache before the step (when ``cold``).
        repeat: Rounds.
        directory: Where the temporary folders go (default: the system's).
        cold: Drop the page cache where the plan says so; ``False`` measures with the files still cached.
        settle: Seconds to wait after the sync (or the drop) before each step.

    Returns:
        ``({name: [figures of each round]}, whether the page cache could be dropped)``.
    """
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in plan}
    dropped = False
    for i in range(repeat):
        order = list(plan)
        if i % 2:
            for k in range(0, len(order) - 1, 2):
                order[k], order[k + 1] = order[k + 1], order[k]
        with tempfile.TemporaryDirectory(prefix="misen-bench-", dir=directory) as tmp:
            earlier: dict[str, dict[str, Any]] = {}
            for name, drop in order:
                if cold and drop:
                    dropped = drop_caches() or dropped
                else:
                    os.sync()  # untimed: no step pays for the write-back of the one before it
                time.sleep(settle)
                earlier[name] = step(name, tmp, earlier)
                rounds[name].append(earlier[name])
    return rounds, dropped
