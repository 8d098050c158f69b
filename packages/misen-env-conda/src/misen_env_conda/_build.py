"""Building a prefix: once per digest, under a file lock, into a temporary folder renamed into place when complete.

A complete prefix holds ``conda-meta/misen-prefix.json`` (its digest, its source, and the activation computed
when it was built); a folder without it is never used. Builds that died half way leave only ``.tmp-*`` folders,
which the next build of the same digest removes while it holds the lock.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from misen.errors import MisenError

from misen_env_conda._lock import LockedEnvironment

__all__ = ["MARKER", "ensure_prefix", "read_marker"]

MARKER = "conda-meta/misen-prefix.json"
# Variables the activation script sets that misen sets itself, or that only describe the shell.
_SHELL_VARIABLES = {"PATH", "CONDA_PREFIX", "CONDA_SHLVL", "PWD", "OLDPWD", "SHLVL", "_"}


def read_marker(prefix: Path) -> dict[str, Any] | None:
    """The marker of a complete prefix, or ``None`` (missing, incomplete, or unreadable)."""
    try:
        data = json.loads((prefix / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # waits while another process builds the same prefix
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def ensure_prefix(locked: LockedEnvironment, location: Path, cache: Path) -> tuple[Path, dict[str, Any]]:
    """The complete prefix of ``locked`` under ``location`` (built now if missing) and its marker."""
    prefix = location / locked.digest
    marker = read_marker(prefix)
    if marker is not None:
        return prefix, marker
    try:
        location.mkdir(parents=True, exist_ok=True)
        with _file_lock(location / ".locks" / f"{locked.digest}.lock"):
            marker = read_marker(prefix)  # built by another run while we waited
            if marker is not None:
                return prefix, marker
            return prefix, _build(locked, prefix, cache)
    except OSError as exc:
        raise MisenError(_os_error_line(exc, locked, location)) from None


def _os_error_line(exc: OSError, locked: LockedEnvironment, location: Path) -> str:
    what = f"the conda environment of {locked.source}"
    if exc.errno == errno.ENOSPC:
        return f"no space left on the device of {location} while building {what}; free some space or set [environment] location"
    return f"cannot build {what} in {location}: {exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")


def _build(locked: LockedEnvironment, prefix: Path, cache: Path) -> dict[str, Any]:
    location = prefix.parent
    for leftover in location.glob(f".tmp-{locked.digest}-*"):
        shutil.rmtree(leftover, ignore_errors=True)  # a build that died: we hold the lock, nobody else uses it
    if prefix.exists():
        shutil.rmtree(prefix)  # a folder without a marker is not a prefix anyone may trust
    staging = location / f".tmp-{locked.digest}-{uuid.uuid4().hex[:8]}"
    print(f"misen: building the conda environment of {locked.source} in {prefix}", file=sys.stderr)
    start = time.time()
    try:
        _install(locked, staging, prefix, cache)
        path, env = _activation(staging, prefix)
        marker = {
            "digest": locked.digest,
            "source": locked.source,
            "platform": locked.platform,
            "packages": [r.url for r in locked.records],
            "path": path,
            "env": env,
            "built": time.time(),
            "build_id": uuid.uuid4().hex,
        }
        (staging / "conda-meta").mkdir(parents=True, exist_ok=True)
        (staging / MARKER).write_text(json.dumps(marker, indent=1))
        os.rename(staging, prefix)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(f"misen: built {prefix} in {time.time() - start:.1f}s", file=sys.stderr)
    return marker


def _install(locked: LockedEnvironment, staging: Path, prefix: Path, cache: Path) -> None:
    """``rattler.install`` into ``staging``, with ``prefix`` patched into the files (they move there after)."""
    import asyncio  # here, not at the top: every misen run imports this module to register the environment

    import rattler

    failure: list[BaseException] = []

    def work() -> None:
        try:
            asyncio.run(
                rattler.install(
                    list(locked.records),
                    target_prefix=staging,
                    alternative_target_prefix=prefix,
                    cache_dir=cache,
                    platform=rattler.Subdir(locked.platform),
                    execute_link_scripts=False,
                    show_progress=False,
                )
            )
        except BaseException as exc:
            failure.append(exc)

    # A thread of its own: the caller may already run an event loop (a notebook).
    thread = threading.Thread(target=work, name="misen-conda-install")
    thread.start()
    thread.join()
    if failure:
        exc = failure[0]
        if isinstance(exc, OSError):
            raise exc
        text = " ".join(str(exc).split()) or type(exc).__name__
        if "No space left on device" in text or "os error 28" in text:
            raise OSError(errno.ENOSPC, "No space left on device") from None
        raise MisenError(f"cannot install the conda environment of {locked.source}: {text}") from None


def _activation(staging: Path, prefix: Path) -> tuple[list[str], dict[str, str]]:
    """The ``PATH`` entries and variables activating the prefix, from rattler's bash activation script.

    The script (``etc/conda/env_vars.d``, ``etc/conda/activate.d/*.sh`` of the packages) runs once, here, in a
    clean environment; the variables it sets are recorded and applied to every task process.
    """
    from rattler.shell import ActivationVariables, Shell, activate

    result = activate(staging, ActivationVariables(None, []), Shell.bash)
    entries: Any = result.path  # a list of paths (typed as one Path by py-rattler)
    path = [str(p).replace(str(staging), str(prefix)) for p in entries if str(p).startswith(str(staging))]
    base = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/"), "LANG": "C"}
    script = result.script + "\nenv -0\n"
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script], env=base, capture_output=True, timeout=120, cwd=staging
    )
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise MisenError(
            f"the activation scripts of the conda environment failed ({err[-1] if err else f'exit {proc.returncode}'})"
        )
    env: dict[str, str] = {}
    for item in proc.stdout.decode(errors="replace").split("\0"):
        key, sep, value = item.partition("=")
        if not sep or key in _SHELL_VARIABLES or base.get(key) == value:
            continue
        env[key] = value.replace(str(staging), str(prefix))
    return path, env
