"""`Experiment`: typed, declarative parameters bound to a named task workflow, with a command line for free.

A subclass declares its parameters as annotated class attributes with defaults and returns its named tasks
from `Experiment.tasks`; `__init_subclass__` makes it an attrs class (keyword-only ``__init__``, ``repr``,
``==``), so experiments are plain values that nest: one experiment's tasks may use another's.
"""

from __future__ import annotations

import copy
import enum
import inspect
import sys
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from misen.argtypes import type_name
from misen.errors import MisenError
from misen.results_table import ResultsFrameMethod
from misen.runner import RunReport, run
from misen.tasks import Task

if TYPE_CHECKING:
    from misen.executor import Executor
    from misen.reporting import Reporter
    from misen.workspace import Workspace

__all__ = ["Experiment", "ParameterError", "UnknownTaskError", "parameters"]


class ParameterError(MisenError, TypeError):
    """An experiment was given an unknown parameter or a value of the wrong type."""


class UnknownTaskError(MisenError, KeyError):
    """``exp[name]`` named a task the experiment does not define."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


_MUTABLE = (list, dict, set, bytearray)


def _copying_factory(value: Any) -> Callable[[], Any]:
    return lambda: copy.deepcopy(value)


class _CliMethod:
    """``cli`` works on the class (``TrainingExperiment.cli()``) and on an instance (``__config__.cli()``)."""

    def __get__(self, obj: Experiment | None, cls: type[Experiment]) -> Callable[..., None]:
        def cli(
            args: list[str] | None = None, *, prog_name: str | None = None, standalone: bool = True
        ) -> Any:
            """Run the experiment's command line (``run``, ``list``, ``tree``, ...) on ``args`` (default: argv).

            Called on an instance, that instance's parameters are the defaults.
            """
            from misen.cli._experiment_cli import main_for

            return main_for(cls, obj, args, prog_name=prog_name, standalone=standalone)

        return cli


class Experiment:
    """Declarative parameters bound to a named task workflow.

    Declare parameters as annotated class attributes with defaults, and return the named tasks from
    `tasks`::

        class TrainingExperiment(Experiment):
            lr: float = 0.001
            dim: int = 256
            lrs: list[float] = [0.001, 0.01]   # each instance gets its own copy

            def tasks(self) -> dict[str, Task]:
                train_task = Task(train, lr=self.lr, dim=self.dim)
                return {"model": train_task, "metrics": Task(evaluate, trained_model=train_task.T)}

    Subclasses become frozen attrs classes: ``TrainingExperiment(lr=0.1)`` takes keyword arguments only, checks
    each value against its annotation (an ``int`` is accepted for a ``float`` and converted; an enum member by
    value or name; a list for ``list[float]`` with each element checked) and raises `ParameterError` naming the
    class, the parameter and the expected type. Instances compare equal when their parameters are equal.
    Annotations inside ``ClassVar[...]`` and names starting with ``_`` are not parameters.
    """

    __misen_hints__: ClassVar[dict[str, Any] | None] = None
    __misen_checked__: ClassVar[bool] = False
    __misen_borrowed__: ClassVar[frozenset[str]] = frozenset()

    cli = _CliMethod()
    results_frame = ResultsFrameMethod()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = dict(inspect.get_annotations(cls))
        inherited = {a.name: a for a in getattr(cls, "__attrs_attrs__", ())}
        borrowed = set()
        if inherited:
            # Re-declare inherited parameters first, in their order, so that a subclass changing a default
            # (with or without repeating the annotation) keeps the parameter where it was.
            annotations: dict[str, Any] = {}
            for name, attribute in inherited.items():
                if name in own:
                    annotations[name] = own[name]
                    continue
                annotations[name] = attribute.type if attribute.type is not None else "typing.Any"
                borrowed.add(name)
                if name not in cls.__dict__:
                    setattr(
                        cls,
                        name,
                        attrs.field(
                            default=attribute.default,
                            validator=attribute.validator,
                            repr=attribute.repr,
                            eq=attribute.eq,
                            metadata=attribute.metadata,
                            converter=attribute.converter,
                        ),
                    )
            annotations.update({k: v for k, v in own.items() if k not in annotations})
            cls.__annotations__ = annotations
            own = dict(annotations)
        cls.__misen_borrowed__ = frozenset(borrowed)
        for name, annotation in own.items():
            if name.startswith("_") or _is_classvar(annotation):
                continue
            if name not in cls.__dict__:
                raise ParameterError(
                    f"{cls.__qualname__}.{name}: an experiment parameter needs a default value"
                )
            default = cls.__dict__[name]
            if name in borrowed and not isinstance(default, _MUTABLE):
                continue
            if isinstance(default, _MUTABLE):
                setattr(cls, name, attrs.field(factory=_copying_factory(default)))
        for name in [n for n in own if n.startswith("_")]:
            cls.__annotations__.pop(name, None)
        attrs.define(cls, kw_only=True, frozen=True, slots=False, eq=True, repr=True, weakref_slot=False)
        cls.__misen_hints__ = None
        cls.__misen_checked__ = False
        attrs_init = cls.__init__

        def __init__(self: Experiment, *args: Any, **values: Any) -> None:
            owner = type(self)
            if args:
                raise ParameterError(
                    f"{owner.__qualname__}(...) takes parameters by name only, e.g. {owner.__qualname__}"
                    f"({', '.join(f'{p}=...' for p in list(parameters(owner))[:2])})"
                )
            attrs_init(self, **_checked(owner, values))

        __init__.__qualname__ = f"{cls.__qualname__}.__init__"
        __init__.__doc__ = attrs_init.__doc__
        cls.__init__ = __init__  # type: ignore[method-assign,assignment]

    # --- the workflow -------------------------------------------------------------------------------------------

    def tasks(self) -> dict[str, Task[Any]]:
        """The experiment's named tasks. Subclasses override this."""
        raise MisenError(f"{type(self).__qualname__} must define tasks(self) -> dict[str, Task]")

    def named_tasks(self) -> dict[str, Task[Any]]:
        """`tasks`, checked (a dict of names to `Task` objects) and computed once per instance."""
        cached = self.__dict__.get("_misen_tasks")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        found = self.tasks()
        where = f"{type(self).__qualname__}.tasks()"
        if not isinstance(found, Mapping):
            raise MisenError(
                f"{where} must return a dict of task names to Task objects, got {type(found).__name__}"
            )
        out: dict[str, Task[Any]] = {}
        for name, task in found.items():
            if not isinstance(name, str):
                raise MisenError(f"{where}: task names must be strings, got {name!r}")
            if not isinstance(task, Task):
                raise MisenError(f"{where}: {name!r} must be a Task, got {type(task).__name__}")
            out[name] = task
        object.__setattr__(self, "_misen_tasks", out)
        return out

    def __getitem__(self, name: str) -> Task[Any]:
        """The task called ``name`` in `tasks` (`UnknownTaskError`, a `KeyError`, for any other name)."""
        named = self.named_tasks()
        try:
            return named[name]
        except (KeyError, TypeError):
            known = ", ".join(repr(n) for n in named) or "none"
            raise UnknownTaskError(
                f"{type(self).__qualname__} has no task {name!r} (its tasks: {known})"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.named_tasks()

    def run(
        self,
        executor: Executor | str | None = None,
        workspace: Workspace | str | None = None,
        *,
        names: list[str] | None = None,
        reporter: Reporter | None = None,
        wait: bool = False,
    ) -> RunReport:
        """Compute every named task (or only ``names``) that is not cached yet; block until done or failed.

        Args:
            executor: An executor instance (``SlurmExecutor(partition="gpu")``), a type name (``"local"``,
                ``"in-process"``, ``"slurm"``), or ``None`` for the configured one.
            workspace: A workspace instance, a type name (``"disk"``, ``"memory"``), or ``None``.
            names: Run only these named tasks (and what they need).
            reporter: Where progress goes (default: plain lines on standard error).
            wait: Wait for tasks that other runs are computing instead of failing on them (a run always waits
                for runs that started after it).

        Returns:
            The `misen.runner.RunReport`. A task that fails does not raise: the report's ``ok`` is false and
            its ``failed`` lists each failed unit with its error and log, and the failure is recorded in the
            workspace (``list`` shows it). Bad input (unknown executor, missing ``@meta`` id) raises
            `misen.errors.MisenError`.
        """
        named = self.named_tasks()
        roots = [self[n] for n in names] if names else list(named.values())
        return run(roots, executor, workspace, reporter=reporter, wait=wait)

    def result(self, name: str, workspace: Workspace | str | None = None) -> Any:
        """``self[name].result(workspace)``: the cached result of one named task."""
        return self[name].result(workspace)


def _is_classvar(annotation: Any) -> bool:
    if isinstance(annotation, str):
        text = annotation.replace(" ", "")
        return text.startswith(("ClassVar", "typing.ClassVar", "t.ClassVar"))
    return annotation is ClassVar or typing.get_origin(annotation) is ClassVar


def parameters(cls: type[Experiment]) -> dict[str, Any]:
    """``{name: resolved type}`` of an experiment class's parameters, in declaration order."""
    hints = cls.__dict__.get("__misen_hints__")
    if hints is not None:
        return hints  # type: ignore[no-any-return]
    fields = attrs.fields(cls)  # type: ignore[arg-type, misc]
    module = sys.modules.get(cls.__module__)
    globalns = dict(vars(module)) if module is not None else {}
    resolved: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        ns = dict(globalns)
        mod = sys.modules.get(klass.__module__)
        if mod is not None:
            ns.update(vars(mod))
        borrowed = klass.__dict__.get("__misen_borrowed__", frozenset())
        for name, ann in inspect.get_annotations(klass).items():
            if name in borrowed:
                continue  # a copy of a parent's annotation: resolved in the parent's module
            if isinstance(ann, str):
                try:
                    ann = eval(ann, ns, dict(vars(klass)))  # the class's own annotations
                except Exception as exc:
                    raise ParameterError(
                        f"{cls.__qualname__}.{name}: cannot resolve the annotation {ann!r} ({type(exc).__name__}: {exc})"
                    ) from None
            resolved[name] = ann
    hints = {f.name: resolved.get(f.name, Any) for f in fields}
    cls.__misen_hints__ = hints
    return hints


def _checked(cls: type[Experiment], values: dict[str, Any]) -> dict[str, Any]:
    hints = parameters(cls)
    if not cls.__dict__.get("__misen_checked__"):
        # Defaults are checked once per class, on first use, so a wrong default names its class.
        for f in attrs.fields(cls):  # type: ignore[arg-type, misc]
            if f.default is not attrs.NOTHING and not isinstance(f.default, attrs.Factory):  # type: ignore[arg-type]
                coerce(f.default, hints[f.name], f"the default of {cls.__qualname__}.{f.name}")
        cls.__misen_checked__ = True
    out = {}
    for name, value in values.items():
        if name not in hints:
            known = ", ".join(hints) or "none"
            raise ParameterError(f"{cls.__qualname__} has no parameter {name!r} (its parameters: {known})")
        out[name] = coerce(value, hints[name], f"{cls.__qualname__}.{name}")
    return out


def coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` checked against the annotation ``tp`` (and converted where lossless); `ParameterError` if not."""
    try:
        return _coerce(value, tp)
    except _Mismatch:
        raise ParameterError(
            f"{where} must be {type_name(tp)}, got {value!r} ({type(value).__name__})"
        ) from None


class _Mismatch(Exception):
    pass


def _coerce(value: Any, tp: Any) -> Any:
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _coerce(value, args[0])
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        for arg in args:
            try:
                return _coerce(value, arg)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is typing.Literal:
        for arg in args:
            if type(arg) is type(value) and arg == value:
                return arg
        raise _Mismatch
    if tp is type(None) or tp is None:
        if value is None:
            return None
        raise _Mismatch
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
        return _coerce_sequence(value, origin or tp, args)
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise _Mismatch
        kt, vt = args if len(args) == 2 else (Any, Any)
        return {_coerce(k, kt): _coerce(v, vt) for k, v in value.items()}
    if isinstance(tp, type):
        return _coerce_class(value, tp)
    return value  # an annotation we cannot check (a TypeVar, a Protocol, ...)


def _coerce_sequence(value: Any, container: Any, args: tuple[Any, ...]) -> Any:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise _Mismatch
    if container is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(value) != len(args):
            raise _Mismatch
        return tuple(_coerce(v, a) for v, a in zip(value, args, strict=True))
    elem = args[0] if args else Any
    items = [_coerce(v, elem) for v in value]
    return container(items) if container is not list else items


def _coerce_class(value: Any, tp: type) -> Any:
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    if tp is int or tp is bool:
        if isinstance(value, tp) and (tp is bool or not isinstance(value, bool)):
            return value
        raise _Mismatch
    if tp is complex and isinstance(value, (int, float, complex)) and not isinstance(value, bool):
        return complex(value)
    if issubclass(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        try:
            return tp(value)
        except ValueError:
            pass
        if isinstance(value, str) and value in tp.__members__:
            return tp[value]
        raise _Mismatch
    if issubclass(tp, PurePath) and isinstance(value, str):
        return tp(value) if tp is not PurePath else Path(value)
    if isinstance(value, tp):
        return value
    raise _Mismatch
