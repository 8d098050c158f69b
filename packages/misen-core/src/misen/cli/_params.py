"""Command-line options made from an experiment's typed parameters (click types for each annotation)."""

from __future__ import annotations

import ast
import enum
import types
import typing
from pathlib import PurePath
from typing import Any

import click

from misen.argtypes import type_name

__all__ = ["ParamOption", "SweepValues", "options_for", "show_value"]


class SweepValues(list):  # type: ignore[type-arg]
    """Several values given for one scalar parameter (``--lr 0.1,0.01``): the command line sweeps over them."""


class _Sweepable(click.ParamType):
    """One value of the inner type, or comma-separated values (a `SweepValues`) to sweep over."""

    def __init__(self, inner: click.ParamType) -> None:
        self.inner = inner
        self.name = inner.name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str) or "," not in value:
            return self.inner.convert(value, param, ctx)
        parts = [part.strip() for part in value.split(",")]
        if any(not part for part in parts):
            self.fail(f"{value!r} has an empty value between commas", param, ctx)
        values = SweepValues()
        for part in parts:
            converted = self.inner.convert(part, param, ctx)
            if converted not in values:
                values.append(converted)
        return values if len(values) > 1 else values[0]

    def get_metavar(self, param: click.Parameter, ctx: Any = None) -> str | None:
        return f"{_metavar(self.inner, param, ctx)}[,...]"


class _Enum(click.Choice):
    """An enum member by name (case-insensitive) or by value."""

    def __init__(self, enum_cls: type[enum.Enum]) -> None:
        self.enum_cls = enum_cls
        super().__init__([m.name.lower() for m in enum_cls], case_sensitive=False)
        self.name = enum_cls.__name__

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, self.enum_cls):
            return value
        for member in self.enum_cls:
            if str(member.value) == str(value):
                return member
        name = super().convert(value, param, ctx)
        return next(m for m in self.enum_cls if m.name.lower() == str(name).lower())


class _Literal(click.Choice):
    """One of a ``Literal[...]``'s values, given as text."""

    def __init__(self, values: tuple[Any, ...]) -> None:
        self.values = {str(v.value if isinstance(v, enum.Enum) else v): v for v in values}
        super().__init__(list(self.values))

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str) and value in self.values.values():
            return value
        return self.values[super().convert(value, param, ctx)]


class _Optional(click.ParamType):
    """The inner type, or ``none`` for ``None``."""

    def __init__(self, inner: click.ParamType) -> None:
        self.inner = inner
        self.name = f"{inner.name}|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            return None
        return self.inner.convert(value, param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: Any = None) -> str | None:
        return f"{_metavar(self.inner, param, ctx)}|none"


class _Listed(click.ParamType):
    """Comma-separated values of the element type; the option may also repeat (values add up)."""

    def __init__(self, elem: click.ParamType) -> None:
        self.elem = elem
        self.name = f"{elem.name}[,...]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, list):
            return value
        text = str(value).strip()
        if not text:
            return []
        return [self.elem.convert(part.strip(), param, ctx) for part in text.split(",")]

    def get_metavar(self, param: click.Parameter, ctx: Any = None) -> str | None:
        return f"{_metavar(self.elem, param, ctx)},..."


def _metavar(tp: click.ParamType, param: click.Parameter, ctx: Any) -> str:
    # click 8.2 passes ctx to get_metavar, 8.1 does not.
    try:
        found = tp.get_metavar(param=param, ctx=ctx)  # type: ignore[call-arg]
    except TypeError:
        found = tp.get_metavar(param)  # type: ignore[call-arg]
    return found or tp.name.upper()


class _PyLiteral(click.ParamType):
    """A Python literal (``{'a': 1}``, ``(1, 2)``); anything that does not parse is taken as text."""

    name = "value"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value


_SEQUENCES = (list, tuple, set, frozenset)


def _strip(tp: Any) -> tuple[Any, bool]:
    """The annotation without ``Annotated``/``None`` in a union, and whether ``None`` was allowed."""
    optional = False
    while True:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Annotated:
            tp = args[0]
            continue
        if origin is typing.Union or origin is types.UnionType:
            rest = [a for a in args if a is not type(None)]
            optional = optional or len(rest) < len(args)
            if len(rest) == 1:
                tp = rest[0]
                continue
            return typing.Union[tuple(rest)] if rest else Any, optional  # noqa: UP007
        return tp, optional


def _scalar_type(tp: Any) -> click.ParamType | None:
    tp, optional = _strip(tp)
    origin = typing.get_origin(tp)
    base: click.ParamType | None
    if origin is typing.Literal:
        base = _Literal(typing.get_args(tp))
    elif tp is bool:
        base = click.BOOL
    elif tp is int:
        base = click.INT
    elif tp is float:
        base = click.FLOAT
    elif tp is str:
        base = click.STRING
    elif isinstance(tp, type) and issubclass(tp, enum.Enum):
        base = _Enum(tp)
    elif isinstance(tp, type) and issubclass(tp, PurePath):
        base = click.Path(path_type=tp if tp is not PurePath else None)  # type: ignore[arg-type]
    else:
        return None
    return _Optional(base) if optional else base


def show_value(value: Any) -> str:
    """How a default looks in ``--help``."""
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, _SEQUENCES):
        return ",".join(show_value(v) for v in value) or "(empty)"
    if value is None:
        return "none"
    return str(value)


class ParamOption(click.Option):
    """An option standing for one experiment parameter (``param_name`` is the parameter's name)."""

    def __init__(self, *args: Any, param_name: str, listed: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.param_name = param_name
        self.listed = listed

    def to_value(self, raw: Any) -> Any:
        if self.listed:
            return [v for chunk in raw for v in chunk]
        return raw


def _flag_names(name: str) -> list[str]:
    # `batch_size` is `--batch-size` (a typo'd `--batch_size` gets click's "did you mean").
    return [f"--{name.replace('_', '-')}"]


def _ident(name: str) -> str:
    # A name of its own, so a parameter called ``name`` cannot collide with a subcommand's NAME argument.
    return f"p__{name}"


def options_for(
    params: dict[str, Any],
    defaults: dict[str, Any],
    reserved: set[str],
    helps: dict[str, str] | None = None,
    unsettable: tuple[type, ...] = (),
) -> list[ParamOption]:
    """One `ParamOption` per parameter that can be given as text; ``reserved`` option names are skipped.

    ``helps`` holds each parameter's help text (from ``attrs.field(metadata={"help": ...})``); parameters of the
    ``unsettable`` types (experiments, tasks: not writable on a command line) keep their defaults.
    """
    out: list[ParamOption] = []
    helps = helps or {}
    for name, tp in params.items():
        names = [n for n in _flag_names(name) if n not in reserved]
        if not names:
            continue
        default = defaults.get(name)
        bare, _optional = _strip(tp)
        origin = typing.get_origin(bare) or bare
        shown = f"default: {show_value(default)}"
        if helps.get(name):
            shown = f"{helps[name].rstrip('.')}; {shown}"
        common: dict[str, Any] = {"param_name": name, "default": None, "show_default": False}
        if bare is bool and not _optional:
            flags = f"{names[0]}/--no-{names[0][2:]}"
            out.append(ParamOption([flags, *names[1:], _ident(name)], help=shown, **common))
            continue
        if origin in _SEQUENCES:
            args = typing.get_args(bare)
            elem = args[0] if args else Any
            elem_type = _scalar_type(elem) or _PyLiteral()
            out.append(
                ParamOption(
                    [*names, _ident(name)],
                    type=_Listed(elem_type),
                    multiple=True,
                    listed=True,
                    help=f"{type_name(tp)}, comma-separated or repeated; {shown}",
                    **common,
                )
            )
            continue
        ctype = _scalar_type(tp)
        if ctype is None:
            if isinstance(bare, type) and issubclass(bare, unsettable):
                continue
            ctype = _PyLiteral()
        extra = " ('none' for None)" if _optional else ""
        if not isinstance(ctype, _PyLiteral):
            ctype = _Sweepable(ctype)
            extra += "; comma-separated values sweep over each"
        out.append(ParamOption([*names, _ident(name)], type=ctype, help=f"{shown}{extra}", **common))
    return out
