"""Fresh interpreters for serializer tests: load a stored result where only some plugins exist, and open the
stored files with the library alone, misen not even importable.

```python
from misen.testing.processes import only_plugins, run_python, run_without_misen

def test_loads_in_a_fresh_process_with_only_this_plugin(tmp_path):
    save_result(value, tmp_path / "r")
    out = run_python(LOAD, str(tmp_path / "r"), env=only_plugins("serializers-mylib", tmp_path))

def test_the_file_opens_without_misen(tmp_path):
    save_result(value, tmp_path / "r")
    run_without_misen("import mylib, sys; mylib.load(sys.argv[1])", str(tmp_path / "r" / "value.mylib"))
```

A plugin's own process is the proof that its results do not depend on the test's process: what the test
imported, registered or cached is not there. The code runs as ``python -c CODE ARGS...``; its output comes back
as text, and a failure fails the test with the end of the process's output. (Code given to `run_without_misen`
cannot start with ``from __future__`` imports: a guard against misen's import runs first.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

__all__ = ["only_plugins", "run_python", "run_without_misen"]

# Executed first in a process that must not use misen: any import of it fails, as in an environment without it.
_NO_MISEN = (
    "import sys\n"
    "class _NoMisen:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'misen' or name.startswith(('misen.', 'misen_')):\n"
    "            raise ModuleNotFoundError(f'No module named {name!r} (this process runs without misen)')\n"
    "        return None\n"
    "sys.meta_path.insert(0, _NoMisen())\n"
    "del _NoMisen\n"
)


def only_plugins(keep: str | Iterable[str], tmp_path: Path | None = None) -> dict[str, str]:
    """The environment of a fresh process in which misen loads only the plugins named in ``keep``.

    Args:
        keep: Entry-point names (group ``misen``) to keep, as a comma-separated string or an iterable, e.g.
            ``"serializers-jax,serializers-numpy"``; ``""`` keeps only misen's built-ins.
        tmp_path: Where the process's configuration home goes (``XDG_CONFIG_HOME``), so that no user-level
            ``misen`` settings reach it; ``None`` leaves it as it is.

    Returns:
        A copy of this process's environment without any ``MISEN_*`` variable, every other installed plugin
        switched off through ``MISEN_DISABLE_PLUGINS``.
    """
    kept = {k.strip() for k in (keep.split(",") if isinstance(keep, str) else keep) if k.strip()}
    others = sorted({ep.name for ep in metadata.entry_points(group="misen")} - kept)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISEN_")}
    env["MISEN_DISABLE_PLUGINS"] = ",".join(others)
    if tmp_path is not None:
        env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    return env


def run_python(
    code: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 300,
) -> str:
    """Run ``code`` in a fresh interpreter (this one's executable) and return its standard output.

    Args:
        code: The program, run as ``python -c code``.
        *args: Its command-line arguments (``sys.argv[1:]``).
        env: Its environment (e.g. `only_plugins`); ``None``: this process's.
        cwd: Its working directory; ``None``: this process's.
        timeout: Seconds before it is killed and the test fails.

    Raises:
        AssertionError: The process exited with a non-zero status; the message holds the end of its output.
    """
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else dict(env),
        cwd=cwd,
    )
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr)[-6000:]  # the end: where a traceback is
        raise AssertionError(f"the fresh process exited with {proc.returncode}:\n{output}")
    return proc.stdout


def run_without_misen(code: str, *args: str, timeout: float = 300) -> str:
    """`run_python` in a process where misen cannot be imported: a stored file opens with its library alone.

    Importing ``misen`` or any ``misen_*`` package fails there with ``ModuleNotFoundError``, as in an
    environment without misen, so a file that only misen's code (or a pickle of misen's classes) can read fails
    the test. ``MISEN_*`` variables are removed from the environment.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISEN_")}
    return run_python(_NO_MISEN + code, *args, env=env, timeout=timeout)
