"""An experiment's command line: options from its typed parameters, and ``run`` (the default), ``list``,
``tree``, ``incomplete``, ``count``, ``logs``, ``result``, ``why``, ``accept`` and ``verify``.

Parameters and ``--executor-type``/``--workspace-type``/``--config`` are accepted before and after the
subcommand (after wins).
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import types
from collections.abc import Iterator
from typing import Any

import attrs
import click
from click.core import ParameterSource

from misen.cli._commands import COMMANDS, CommandSpec, command_spec
from misen.cli._errors import error_line, invoke
from misen.cli._params import ParamOption, SweepValues, options_for
from misen.errors import MisenError, PluginNotFoundError
from misen.experiment import Experiment, parameters
from misen.labels import describe_value
from misen.project_root import root_of_module_file
from misen.results_table import sweep_members
from misen.session import current_session, make_session, set_config_override, use_session
from misen.tasks import Task
from misen.workspace import Workspace, resolve_workspace

__all__ = ["build_cli", "main_for"]

CONTEXT = types.MappingProxyType({"help_option_names": ("-h", "--help"), "max_content_width": 110})
#: Parameter types a command line cannot write: such parameters keep their defaults.
_UNSETTABLE = (Experiment, Task)
_COMMON_NAMES = frozenset({"--executor-type", "--workspace-type", "--config"})


def _common_options() -> list[click.Option]:
    return [
        click.Option(
            ["--executor-type", "m__executor_type"],
            metavar="NAME",
            help="Executor to run with (`misen plugins` lists those installed); default: [executor] type in .misen.toml.",
        ),
        click.Option(
            ["--workspace-type", "m__workspace_type"],
            metavar="NAME",
            help="Workspace to use (`misen plugins` lists those installed); default: [workspace] type in .misen.toml.",
        ),
        click.Option(
            ["--config", "m__config"],
            metavar="PATH",
            help="Use only this configuration file (replaces .misen.toml and the user file; wins over $MISEN_CONFIG).",
        ),
    ]


@attrs.define
class State:
    """What the command line said: the experiment's class, its base instance and the values given."""

    cls: type[Experiment]
    base: Experiment | None
    given: dict[str, Any] = attrs.field(factory=dict)
    common: dict[str, Any] = attrs.field(factory=dict)
    _experiment: Experiment | None = None

    def absorb(self, ctx: click.Context) -> None:
        for param in ctx.command.params:
            source = ctx.get_parameter_source(param.name or "")
            if source in (None, ParameterSource.DEFAULT) or param.name is None:
                continue
            value = ctx.params.get(param.name)
            if isinstance(param, ParamOption):
                self.given[param.param_name] = param.to_value(value)
            elif param.name.startswith("m__"):
                self.common[param.name[3:]] = value
        self._experiment = None

    def apply_config(self) -> None:
        if self.common.get("config"):
            set_config_override(self.common["config"])

    def check_config(self) -> None:
        """Structure both backend sections now, so a typo in .misen.toml is reported by every command.

        An executor that is not installed is only an error for ``run``: inspecting results needs none.
        """
        self.workspace()
        try:
            current_session().backend("executor", self.executor)
        except PluginNotFoundError:
            pass

    @property
    def swept(self) -> dict[str, list[Any]]:
        """The parameters given several values (``--lr 0.1,0.01``), in the order given."""
        return {k: list(v) for k, v in self.given.items() if isinstance(v, SweepValues)}

    def _make(self, values: dict[str, Any]) -> Experiment:
        if self.base is not None:
            return attrs.evolve(self.base, **values)  # type: ignore[misc]
        return self.cls(**values)

    @property
    def experiment(self) -> Experiment:
        """The one experiment the command line names (`MisenError` for a sweep: use `members`)."""
        if self._experiment is None:
            if self.swept:
                names = ", ".join("--" + k.replace("_", "-") for k in self.swept)
                raise MisenError(f"this command takes one experiment, but {names} were given several values")
            self._experiment = self._make(self.given)
        return self._experiment

    def members(self) -> list[tuple[str, Experiment]]:
        """``(label, experiment)`` for each member of a command-line sweep (one ``("", experiment)`` without)."""
        swept = self.swept
        if not swept:
            return [("", self.experiment)]
        fixed = {k: v for k, v in self.given.items() if k not in swept}
        out = []
        for combo in itertools.product(*swept.values()):
            values = dict(zip(swept, combo, strict=True))
            label = ", ".join(f"{k}={describe_value(v)}" for k, v in values.items())
            out.append((label, self._make({**fixed, **values})))
        return out

    @property
    def executor(self) -> str | None:
        return self.common.get("executor_type")

    def workspace(self) -> Workspace:
        return resolve_workspace(self.common.get("workspace_type"))

    def member_values(self, name: str | None = None) -> list[tuple[dict[str, Any], Experiment]]:
        """``(swept values, experiment)`` for each sweep member (checking that ``name`` is one of its tasks)."""
        swept = self.swept
        if not swept:
            found = [({}, self.experiment)]
        else:
            fixed = self._make({k: v for k, v in self.given.items() if k not in swept})
            found = sweep_members(fixed, swept)
        if name is not None:
            found[0][1][name]  # an unknown name is one clear error
        return found

    def named(self, names: tuple[str, ...] | list[str] = ()) -> dict[str, Task[Any]]:
        """The named tasks (or ``names``); in a sweep, each member's as ``name[lr=0.1, dim=256]``."""
        out: dict[str, Task[Any]] = {}
        for label, exp in self.members():
            chosen = exp.named_tasks() if not names else {n: exp[n] for n in names}
            for name, task in chosen.items():
                out[f"{name}[{label}]" if label else name] = task
        return out


def _defaults(cls: type[Experiment], base: Experiment | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in attrs.fields(cls):  # type: ignore[arg-type, misc]
        if base is not None:
            out[f.name] = getattr(base, f.name)
        elif isinstance(f.default, attrs.Factory):  # type: ignore[arg-type]
            out[f.name] = f.default.factory()  # type: ignore[union-attr]
        else:
            out[f.name] = f.default
    return out


class _ExperimentGroup(click.Group):
    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[PARAMETERS] [COMMAND] [ARGS]...")


def build_cli(cls: type[Experiment], base: Experiment | None = None) -> click.Group:
    """The click group of ``cls``'s command line (``base``'s parameters as defaults when given)."""
    params = parameters(cls)
    defaults = _defaults(cls, base)
    doc = (cls.__doc__ or "").strip() if cls.__doc__ is not Experiment.__doc__ else ""
    title = f"{cls.__qualname__}" + (f" with {base!r}" if base is not None else "")

    def group_callback(**_: Any) -> Any:
        ctx = click.get_current_context()
        state = State(cls, base)
        state.absorb(ctx)
        ctx.obj = state
        if ctx.invoked_subcommand is None:
            state.apply_config()
            return command_spec("run").load()(state, ())
        return None

    group = _ExperimentGroup(
        name=cls.__qualname__,
        callback=group_callback,
        params=[*options_for(params, defaults, _COMMON_NAMES, _helps(cls), _UNSETTABLE), *_common_options()],
        invoke_without_command=True,
        context_settings=CONTEXT,
        help=f"{title}.\n\n{doc}\n\nWithout a command, runs the experiment (`run`).".replace(
            "\n\n\n", "\n\n"
        ),
        no_args_is_help=False,
    )
    for spec in COMMANDS:
        group.add_command(_command(spec, params, defaults, _helps(cls)))
    return group


def _helps(cls: type[Experiment]) -> dict[str, str]:
    return {f.name: str(f.metadata["help"]) for f in attrs.fields(cls) if f.metadata.get("help")}  # type: ignore[arg-type, misc]


def _command(
    spec: CommandSpec, params: dict[str, Any], defaults: dict[str, Any], helps: dict[str, str]
) -> click.Command:
    own: list[click.Parameter] = list(spec.params())
    reserved = set(_COMMON_NAMES)
    for p in own:
        reserved.update(getattr(p, "opts", ()))
        reserved.update(getattr(p, "secondary_opts", ()))
    own_names = [p.name for p in own]

    def callback(**kwargs: Any) -> int:
        ctx = click.get_current_context()
        parent = ctx.find_object(State)
        if parent is None:  # pragma: no cover - the group always sets it
            raise MisenError("internal error: no experiment state")
        state = State(parent.cls, parent.base, dict(parent.given), dict(parent.common))
        state.absorb(ctx)
        state.apply_config()
        state.check_config()
        return spec.load()(state, **{n: kwargs[n] for n in own_names if n is not None})

    return click.Command(
        spec.name,
        callback=callback,
        params=[*own, *options_for(params, defaults, reserved, helps, _UNSETTABLE), *_common_options()],
        help=spec.help,
        short_help=spec.help.splitlines()[0],
        context_settings=CONTEXT,
    )


@contextlib.contextmanager
def pinned_project_root(cls: type[Experiment]) -> Iterator[None]:
    """Search the project root from the file defining ``cls`` (not the current directory) while its command runs.

    A session whose search starts there is current for the command (`misen.session.use_session`). Installed code
    (in ``site-packages``) pins nothing: the current directory's project is used, as before.
    """
    module = sys.modules.get(cls.__module__)
    root = root_of_module_file(getattr(module, "__file__", None))
    if root is None:
        yield
        return
    with use_session(make_session(cwd=root)):
        yield


def main_for(
    cls: type[Experiment],
    base: Experiment | None,
    args: list[str] | None = None,
    *,
    prog_name: str | None = None,
    standalone: bool = True,
) -> int:
    """Run the command line of ``cls`` (or of the configured instance ``base``); exit unless not standalone."""
    if not (isinstance(cls, type) and issubclass(cls, Experiment)):
        raise MisenError(f"{cls!r} is not an Experiment subclass")
    # A command line run as a program searches the project root from the experiment's file; a call from Python
    # (standalone=False) keeps the caller's session, and with it the caller's workspaces.
    with pinned_project_root(cls) if standalone else contextlib.nullcontext():
        try:
            group = build_cli(cls, base)
        except MisenError as exc:
            error_line(str(exc))
            code = 1
        else:
            code = invoke(group, args, prog_name)
    if standalone:
        sys.exit(code)
    return code
