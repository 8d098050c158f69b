"""Configuration: ``.misen.toml`` over ``$XDG_CONFIG_HOME/misen.toml``, or one explicit file.

The project file's values override the user file's; ``--config PATH`` or ``$MISEN_CONFIG`` replaces the whole
chain (``--config`` wins). Sections: ``[executor]`` and ``[workspace]`` (a ``type`` plus that backend's own
settings, structured by cattrs into the backend's attrs ``Settings`` class) and ``[cache]``.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

import attrs

from misen.errors import ConfigError
from misen.project_root import search as search_root

__all__ = [
    "CacheSettings",
    "Settings",
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


def _strict_int(value: Any, _: Any) -> int:
    if type(value) is int:
        return value
    raise ValueError(f"expected an integer, got {_shown(value)}")


def _strict_float(value: Any, _: Any) -> float:
    if type(value) in (int, float):
        return float(value)
    raise ValueError(f"expected a number, got {_shown(value)}")


def _strict_str(value: Any, _: Any) -> str:
    if type(value) is str:
        return value
    raise ValueError(f"expected a string, got {_shown(value)}")


def _strict_bool(value: Any, _: Any) -> bool:
    if type(value) is bool:
        return value
    raise ValueError(f"expected true or false, got {_shown(value)}")


def _path(value: Any, _: Any) -> Path:
    if isinstance(value, str | Path):
        return Path(value)
    raise ValueError(f"expected a path (a string), got {_shown(value)}")


def _shown(value: Any) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(type(value))
    return f"{kind} ({value!r})" if kind else f"{type(value).__name__} {value!r}"


@functools.cache
def converter() -> Any:
    """The cattrs converter for settings: unknown keys are errors, and so is a value of the wrong type (no
    ``2.5`` → ``2``, ``true`` → ``1`` or ``"3"`` → ``3``: an int field takes only integers, a float field integers
    and floats, a string field strings, a bool field booleans)."""
    import cattrs

    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(Path, _path)
    return conv


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
    plain = _structure_plain(cls, data)
    if plain is not None:
        return plain
    try:
        return converter().structure(dict(data), cls)
    except Exception as exc:
        raise ConfigError(_describe_error(exc, where, cls)) from None


def unstructure_settings(obj: Any) -> dict[str, Any]:
    plain = _unstructure_plain(obj)
    if plain is not None:
        return plain
    out = converter().unstructure(obj)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in out.items()}


# Settings of scalar fields with values of the right types are built (and read back) without cattrs, whose import
# costs tens of milliseconds of every start; anything else, and every mistake,
# goes through the converter, which words the error.
_TAKES = types.MappingProxyType(
    {
        "str": lambda v: v if type(v) is str else _NO,
        "int": lambda v: v if type(v) is int else _NO,
        "float": lambda v: float(v) if type(v) in (int, float) else _NO,
        "bool": lambda v: v if type(v) is bool else _NO,
        "Path": lambda v: Path(v) if isinstance(v, str | Path) else _NO,
    }
)
_NO = object()


@functools.cache
def _plain_fields(cls: type) -> dict[str, tuple[str, Any]]:
    """``{key: (argument name, check)}`` of the init fields of attrs class ``cls`` whose type is a plain scalar
    (``str``, ``int``, ``float``, ``bool``, ``Path``, or one of them ``| None``)."""
    out: dict[str, tuple[str, Any]] = {}
    if not attrs.has(cls):
        return out
    for a in attrs.fields(cls):
        if not a.init:
            continue
        take, optional = _check_of(a.type)
        if take is None:
            continue
        if optional:
            take = (lambda t: lambda v: None if v is None else t(v))(take)
        out[a.name] = (a.alias or a.name, take)
    return out


def _check_of(tp: Any) -> tuple[Any, bool]:
    """``(check, optional)`` for a field annotated ``tp`` (a string under ``from __future__ import annotations``,
    or the type once something resolved it); ``(None, False)`` when it is not a plain scalar."""
    if isinstance(tp, str):
        optional = tp.endswith(" | None")
        tp = tp.removesuffix(" | None")
        if tp.startswith(("Literal[", "typing.Literal[")):
            try:
                values = ast.literal_eval("(" + tp[tp.index("[") + 1 : -1] + ",)")
            except (ValueError, SyntaxError):
                return None, False
            return _literal(values), optional
        return _TAKES.get(tp), optional
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return _literal(args), False
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return _check_of(inner)[0], True
    return (_TAKES.get(tp.__name__), False) if isinstance(tp, type) else (None, False)


def _literal(values: tuple[Any, ...]) -> Any:
    """The check of a ``Literal[...]`` field of strings, or ``None`` when its values are not all strings."""
    if not values or not all(type(v) is str for v in values):
        return None
    allowed = frozenset(values)
    return lambda v: v if type(v) is str and v in allowed else _NO


def _structure_plain(cls: type, data: dict[str, Any]) -> Any:
    fields = _plain_fields(cls)
    if not fields and data:
        return None
    kwargs = {}
    for key, value in data.items():
        found = fields.get(key) if type(key) is str else None
        if found is None:
            return None
        value = found[1](value)
        if value is _NO:
            return None
        kwargs[found[0]] = value
    try:
        return cls(**kwargs)
    except Exception:
        return None  # a validator said no: the converter says it again, in words


def _unstructure_plain(obj: Any) -> dict[str, Any] | None:
    cls = type(obj)
    if not attrs.has(cls):
        return None
    out: dict[str, Any] = {}
    for a in attrs.fields(cls):
        value = getattr(obj, a.name)
        if value is None or type(value) in (str, int, float, bool):
            out[a.name] = value
        elif isinstance(value, Path):
            out[a.name] = str(value)
        else:
            return None
    return out


def search_project_root(here: Path) -> Path | None:
    """The project root for a search from ``here``: see `misen.project_root` (``.misen.toml`` or
    ``pyproject.toml``; a uv workspace member's root is its workspace's)."""
    return search_root(here)[0]


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "misen.toml"


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 text (byte {exc.start} cannot be decoded)") from None
    except IsADirectoryError:
        raise ConfigError(f"configuration file {path} is a directory") from None
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


def config_files(explicit: str | Path | None, root: Path) -> list[Path]:
    """The files that make up the configuration, lowest precedence first: ``explicit`` (``--config``), else
    ``$MISEN_CONFIG``, else the user file and ``root``'s ``.misen.toml``."""
    chosen = explicit or os.environ.get("MISEN_CONFIG") or None
    if chosen:
        return [Path(chosen).expanduser()]
    files = []
    user = user_config_path()
    if user.is_file():
        files.append(user)
    project = root / PROJECT_FILE
    if project.is_file():
        files.append(project)
    return files


def settings_key(files: list[Path]) -> tuple[Any, ...]:
    """What `read_settings` depends on: the files and their modification times."""
    return (tuple(str(f) for f in files), tuple(f.stat().st_mtime_ns if f.exists() else 0 for f in files))


def read_settings(files: list[Path]) -> Settings:
    """Merge ``files`` (lowest precedence first) into the effective `Settings`."""
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
    return Settings(
        executor=merged["executor"],
        workspace=merged["workspace"],
        cache=cache,
        environment=merged["environment"],
        sources=sources,
        files=[str(f) for f in files],
    )


def _norm(name: Any) -> str:
    return str(name).strip().lower().replace("_", "-")


def section_where(settings: Settings, section: str) -> str:
    files = {v for (s, _), v in settings.sources.items() if s == section}
    return f"{', '.join(sorted(files)) or 'configuration'}: [{section}]"
