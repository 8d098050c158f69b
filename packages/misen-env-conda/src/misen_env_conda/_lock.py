"""Reading ``pixi.lock``: one environment's packages for one platform, and the digest that names its prefix."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import attrs
from misen.errors import ConfigError

__all__ = ["LockedEnvironment", "read_locked_environment"]

#: Bumped when the layout of a built prefix changes: a new digest, so a new prefix.
PREFIX_FORMAT = 1


@attrs.frozen
class LockedEnvironment:
    """What one environment of a lock file holds for one platform."""

    lock_path: Path
    name: str
    platform: str
    #: The locked conda packages (``rattler.RepoDataRecord``).
    records: tuple[Any, ...]
    digest: str

    @property
    def source(self) -> str:
        return f"{self.lock_path.name}, environment {self.name}, {self.platform}"


def current_platform() -> str:
    import rattler

    return str(rattler.Subdir.current())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


# Parsed environments by (lock file, a digest of its bytes, name, platform): an unchanged lock is parsed once.
_CACHE: dict[tuple[Any, ...], LockedEnvironment] = {}


def read_locked_environment(lock_path: Path, name: str, platform: str | None) -> LockedEnvironment:
    """`_read_locked_environment`, remembered per process while the lock file is unchanged."""
    try:
        content = hashlib.blake2b(lock_path.read_bytes(), digest_size=16).hexdigest()
    except OSError as exc:
        raise ConfigError(f"{lock_path}: cannot be read ({exc.strerror})") from None
    key = (str(lock_path), content, name, platform)
    found = _CACHE.get(key)
    if found is None:
        found = _CACHE[key] = _read_locked_environment(lock_path, name, platform)
    return found


def _read_locked_environment(lock_path: Path, name: str, platform: str | None) -> LockedEnvironment:
    """The packages of environment ``name`` for ``platform`` (default: this machine's) in ``lock_path``.

    Raises:
        ConfigError: one line naming the file: unreadable or malformed lock, unknown environment or platform,
            or PyPI packages in the environment (they belong in the project's uv venv, see below).
    """
    import rattler

    try:
        lock = rattler.LockFile.from_path(lock_path)
    except Exception as exc:
        raise ConfigError(f"{lock_path}: not a pixi.lock that can be read ({_first_line(exc)})") from None
    env = lock.environment(name)
    if env is None:
        known = ", ".join(sorted(n for n, _ in lock.environments())) or "none"
        raise ConfigError(f"{lock_path}: no environment {name!r} in the lock (it has: {known})")
    plat = platform or current_platform()
    platforms = {str(p.name): p for p in env.platforms()}
    if plat not in platforms:
        known = ", ".join(sorted(platforms)) or "none"
        raise ConfigError(
            f"{lock_path}: environment {name!r} is not locked for platform {plat} (it is locked for: {known})"
        )
    lock_platform = platforms[plat]
    pypi = env.pypi_packages_for_platform(lock_platform) or []
    if pypi:
        listed = ", ".join(f"{p.name} {p.version}" for p in pypi[:5]) + (" …" if len(pypi) > 5 else "")
        raise ConfigError(
            f"{lock_path}: environment {name!r} ({plat}) locks PyPI packages ({listed}); misen-env-conda installs "
            "only conda packages: tasks import Python packages from the project's uv venv, so declare them in "
            "pyproject.toml (uv.lock) instead"
        )
    try:
        records = tuple(env.conda_repodata_records_for_platform(lock_platform) or ())
    except Exception as exc:
        raise ConfigError(f"{lock_path}: environment {name!r} ({plat}) cannot be read ({_first_line(exc)})") from None
    return LockedEnvironment(
        lock_path=lock_path, name=name, platform=plat, records=records, digest=environment_digest(records, plat)
    )


def environment_digest(records: tuple[Any, ...], platform: str) -> str:
    """A digest of exactly what gets installed: each package's URL and checksums, and the platform.

    Other environments and platforms of the same lock, and the order of its entries, do not change it.
    """
    lines = []
    for rec in records:
        lines.append(f"{rec.url}\t{rec.sha256.hex() if rec.sha256 else ''}\t{rec.md5.hex() if rec.md5 else ''}")
    h = hashlib.blake2b(digest_size=16)
    h.update(f"misen-env-conda prefix {PREFIX_FORMAT}\n{platform}\n".encode())
    h.update("\n".join(sorted(lines)).encode())
    return h.hexdigest()
