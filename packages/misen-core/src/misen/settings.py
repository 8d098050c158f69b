"""Configuration: ``.misen.toml`` over ``$XDG_CONFIG_HOME/misen.toml``, or one explicit file.

The project file's values override the user file's; ``--config PATH`` or ``$MISEN_CONFIG`` replaces the whole
chain (``--config`` wins). Sections: ``[executor]`` and ``[workspace]`` (a ``type`` plus that backend's own
settings, structured by cattrs into the backend's attrs ``Settings`` class) and ``[cache]``.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import attrs

from misen.errors import ConfigError

__all__ = [
    "CacheSettings",
    "Settings",
    "load_settings",
    "project_root",
    "set_config_override",
    "structure_settings",
    "unstructure_settings",
]

PROJECT_FILE = ".misen.toml"
#: ``environment``: native environments (issue 19), structured by the environment plugin (misen-env-conda).
SECTIONS = ("executor", "workspace", "cache", "environment")


@attrs.define
class CacheSettings:
    """The ``[cache]`` section."""

    code_changes: Literal["track", "ignore"] = attrs.field(
        default="track",
        metadata={
            "help": 'Whether a fingerprint of the code a task reaches is part of its identity ("track") or only '
            'its id and arguments are ("ignore").'
        },
    )


@attrs.define
class Settings:
    """The effective configuration, with the file each value came from."""

    executor: dict[str, Any] = attrs.field(factory=dict)
    workspace: dict[str, Any] = attrs.field(factory=dict)
    cache: CacheSettings = attrs.field(factory=CacheSettings)
    #: The ``[environment]`` section as read (the environment plugin structures it).
    environment: dict[str, Any] = attrs.field(factory=dict)
    #: ``(section, key) -> file`` for every value read from a file.
    sources: dict[tuple[str, str], str] = attrs.field(factory=dict)
    #: The files read, in order of increasing precedence.
    files: list[str] = attrs.field(factory=list)

    def source(self, section: str, key: str) -> str:
        return self.sources.get((section, key), "default")


_converter: Any = None


def converter() -> Any:
    global _converter
    if _converter is None:
        import cattrs

        _converter = cattrs.Converter(forbid_extra_keys=True)
        _converter.register_structure_hook(Path, lambda v, _: Path(v))
    return _converter


def _describe_error(exc: Exception, where: str, cls: type) -> str:
    import cattrs

    lines: list[str] = []
    if isinstance(exc, cattrs.BaseValidationError):
        from cattrs.v import format_exception

        def describe(e: BaseException, tp: type | None) -> str:
            # A validator's or converter's own ValueError message says more than cattrs' "invalid value".
            if isinstance(e, ValueError) and not isinstance(e, cattrs.BaseValidationError) and str(e):
                return str(e)
            return format_exception(e, tp)

        for msg in cattrs.transform_error(exc, path="$", format_exception=describe):
            m = re.match(r"(.*) @ \$(?:\.(.+))?$", msg)
            if m:
                text, path = m.group(1), m.group(2)
                extra = re.match(r"extra fields found \((.*)\)", text)
                if extra:
                    known = ", ".join(a.name for a in attrs.fields(cls)) if attrs.has(cls) else ""
                    for key in extra.group(1).split(", "):
                        lines.append(f"{where}: unknown key {key!r} (known keys: {known})")
                    continue
                lines.append(f"{where}: key {path!r}: {text}" if path else f"{where}: {text}")
            else:
                lines.append(f"{where}: {msg}")
    else:
        lines.append(f"{where}: {exc}")
    return "; ".join(lines)


def structure_settings(cls: type, data: dict[str, Any], *, where: str) -> Any:
    """Build ``cls`` (an attrs class) from ``data``; unknown keys and wrong types raise `ConfigError`."""
    try:
        return converter().structure(dict(data), cls)
    except Exception as exc:
        raise ConfigError(_describe_error(exc, where, cls)) from None


def unstructure_settings(obj: Any) -> dict[str, Any]:
    out = converter().unstructure(obj)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in out.items()}


_ROOTS: dict[str, Path | None] = {}


def find_project_root(start: Path | None = None) -> Path | None:
    """The nearest directory at or above ``start`` (default: cwd) holding ``.misen.toml`` or ``pyproject.toml``."""
    here = (start or Path.cwd()).resolve()
    key = str(here)
    if key in _ROOTS:
        return _ROOTS[key]
    found = None
    for candidate in (here, *here.parents):
        if (candidate / PROJECT_FILE).is_file() or (candidate / "pyproject.toml").is_file():
            found = candidate
            break
    _ROOTS[key] = found
    return found


def project_root(start: Path | None = None) -> Path:
    """`find_project_root`, or the current directory when no project file is found."""
    return find_project_root(start) or (start or Path.cwd()).resolve()


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "misen.toml"


_override: Path | None = None
_cache: dict[tuple[Any, ...], Settings] = {}


def set_config_override(path: str | Path | None) -> None:
    """Use ``path`` as the only configuration file (what ``--config`` does)."""
    global _override
    _override = Path(path) if path is not None else None
    _cache.clear()
    from misen import tasks

    tasks._config_cache.clear()


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    for section, value in data.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"{path}: unknown section [{section}] (known sections: {', '.join('[' + s + ']' for s in SECTIONS)})"
            )
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {section} must be a section ([{section}]), not a value")
    return data


def config_files(explicit: str | Path | None = None) -> list[Path]:
    """The files that make up the configuration, lowest precedence first."""
    chosen = explicit or _override or os.environ.get("MISEN_CONFIG") or None
    if chosen:
        return [Path(chosen).expanduser()]
    files = []
    user = user_config_path()
    if user.is_file():
        files.append(user)
    project = project_root() / PROJECT_FILE
    if project.is_file():
        files.append(project)
    return files


def load_settings(config: str | Path | None = None) -> Settings:
    """The effective configuration (cached per process, per cwd and per chosen file)."""
    files = config_files(config)
    key = (tuple(str(f) for f in files), tuple(f.stat().st_mtime_ns if f.exists() else 0 for f in files))
    cached = _cache.get(key)
    if cached is not None:
        return cached
    merged: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    sources: dict[tuple[str, str], str] = {}
    for path in files:
        data = _read(path)
        for section, values in data.items():
            current = merged[section]
            # A backend section naming another type replaces the lower file's section, never mixes keys of two
            # backends.
            if "type" in values and "type" in current and _norm(values["type"]) != _norm(current["type"]):
                current.clear()
                for k in [k for k in sources if k[0] == section]:
                    del sources[k]
            current.update(values)
            for k in values:
                sources[(section, k)] = str(path)
    for section in ("executor", "workspace"):
        t = merged[section].get("type")
        if t is not None and not isinstance(t, str):
            raise ConfigError(f"{sources.get((section, 'type'))}: [{section}] type must be a string, got {t!r}")
    cache = structure_settings(
        CacheSettings, merged["cache"], where=f"{sources.get(('cache', next(iter(merged['cache']), '')), 'config')}: [cache]"
    )
    settings = Settings(
        executor=merged["executor"],
        workspace=merged["workspace"],
        cache=cache,
        environment=merged["environment"],
        sources=sources,
        files=[str(f) for f in files],
    )
    _cache[key] = settings
    return settings


def _norm(name: Any) -> str:
    return str(name).strip().lower().replace("_", "-")


def section_where(settings: Settings, section: str) -> str:
    files = {v for (s, _), v in settings.sources.items() if s == section}
    return f"{', '.join(sorted(files)) or 'configuration'}: [{section}]"
