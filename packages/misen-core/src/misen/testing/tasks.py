"""Task functions the contract suites run: importable from any worker process that has misen installed."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from misen.taskmeta import meta
from misen.tasks import WORK_DIR

__all__ = ["add", "boom", "chatty", "echo_env", "nocache_double", "slow_value", "write_marker"]


@meta(id="CONTRACT-ADD", cache=True)
def add(a: int, b: int) -> int:
    return a + b


@meta(id="CONTRACT-DOUBLE")
def nocache_double(x: int) -> int:
    return 2 * x


@meta(id="CONTRACT-BOOM", cache=True)
def boom(x: int) -> int:
    raise ValueError(f"boom {x}")


@meta(id="CONTRACT-MARK", cache=True)
def write_marker(directory: str, name: str, value: int = 0) -> int:
    # Side effect that counts executions across processes.
    with open(Path(directory) / f"{name}.{os.getpid()}.{time.time_ns()}", "w") as f:
        f.write(str(value))
    return value


@meta(id="CONTRACT-ENV", cache=True)
def echo_env(name: str, tag: int = 0) -> str | None:
    return os.environ.get(name)


@meta(id="CONTRACT-SLOW", cache=True)
def slow_value(seconds: float, value: Any, work_dir: Path = WORK_DIR) -> Any:
    time.sleep(seconds)
    return value


@meta(id="CONTRACT-CHATTY", cache=True)
def chatty(i: int) -> int:
    """Prints a line naming itself on standard output and standard error (output capture)."""
    import sys

    print(f"chatty task {i} on stdout")
    print(f"chatty task {i} on stderr", file=sys.stderr)
    time.sleep(0.02)
    return i
