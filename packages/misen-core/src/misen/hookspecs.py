"""The hook specifications of misen: the whole contract between misen and its plugins.

A plugin is a module (named by an entry point in the ``misen`` group) holding functions marked with
``@misen.hookimpl`` whose names match the specs below. Registration hooks are called **once per process**, the
first time misen needs that kind of plugin, and their answers are kept in dispatch tables; nothing here is
called per task, per hashed value or per saved result. Call them only with keyword arguments: new information
arrives as new keyword arguments, which an implementation may take or ignore.

Four families, as the design names them: **execution**, **storage**, **serialization** and **hashing**, plus
the lifecycle hooks that observe runs and the CLI hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    import click

    from misen.environment import Environment
    from misen.executor import Executor, Plan, RunEvents, UnitOutcome, WorkUnit
    from misen.hashing import Hasher
    from misen.plugins import Lazy
    from misen.runner import RunReport
    from misen.serializer import Serializer
    from misen.tasks import Task
    from misen.workspace import Workspace

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("misen")
hookimpl = pluggy.HookimplMarker("misen")


# ---------------------------------------------------------------------------------------------------------------
# execution
# ---------------------------------------------------------------------------------------------------------------


@hookspec
def misen_add_executors() -> Sequence[type[Executor] | Lazy]:
    """Register executor classes.

    Called once, the first time misen resolves an executor by name (``[executor] type``, ``--executor-type``,
    ``exp.run(executor="...")``) or lists plugins.

    Returns:
        A sequence of `misen.Executor` subclasses. Each names itself with ``PLUGIN_NAME`` (``"local"``) and may
        list ``ALIASES``; its ``Settings`` attrs class receives the ``[executor]`` section of ``.misen.toml``.
        Two executors claiming one name is an error naming both classes. ``None`` (or an empty list) registers
        nothing. An entry may be a `misen.plugins.Lazy` instead of the class (``Lazy("serial",
        "my_pkg.executor:SerialExecutor")``): its module is imported only when a run asks for that executor.
    """


@hookspec(firstresult=True)
def misen_compute(tasks: Sequence[Task[Any]], workspace: Workspace, session: Any) -> RunReport | None:
    """Compute ``tasks`` and what they need that is not cached yet, into ``workspace``, for a lazy facade.

    ``Task.result()`` calls it when a result it must return is not cached. misen's built-in implementation
    (``misen._builtin.engine``, registered last) is `misen.run` with the configured executor; a plugin may answer
    first to compute elsewhere. The first answer that is not ``None`` is used; a failed task is reported in it,
    not raised.

    Returns:
        The run's `misen.runner.RunReport`.
    """


# ---------------------------------------------------------------------------------------------------------------
# storage
# ---------------------------------------------------------------------------------------------------------------


@hookspec
def misen_add_workspaces() -> Sequence[type[Workspace] | Lazy]:
    """Register workspace classes.

    Called once, the first time misen resolves a workspace by name (``[workspace] type``,
    ``--workspace-type``, ``workspace="..."`` arguments) or lists plugins.

    Returns:
        A sequence of `misen.Workspace` subclasses, each with ``PLUGIN_NAME`` (``"disk"``) and a ``Settings``
        attrs class for the ``[workspace]`` section. ``None`` registers nothing. An entry may be a
        `misen.plugins.Lazy`, imported only when a run asks for that workspace.
    """


# ---------------------------------------------------------------------------------------------------------------
# serialization
# ---------------------------------------------------------------------------------------------------------------


@hookspec
def misen_add_serializers() -> Sequence[type[Serializer]]:
    """Register serializer classes for task results.

    Called once, the first time a result is saved or loaded. Each `misen.Serializer` subclass claims types by
    their fully qualified names in ``TYPES`` (``"numpy.ndarray"``), so registering never imports the library it
    serializes; a subclass of a claimed type matches through its MRO. When several serializers claim a type the
    highest ``PRIORITY`` wins; `Serializer.match` may still decline a particular value. ``PLUGIN_NAME`` is
    recorded with every stored result and must stay stable, so old results find their serializer again.

    Returns:
        A sequence of `misen.Serializer` subclasses, or ``None``.
    """


# ---------------------------------------------------------------------------------------------------------------
# hashing
# ---------------------------------------------------------------------------------------------------------------


@hookspec
def misen_add_hashers() -> Sequence[Hasher]:
    """Register hashers that let values of more types be task arguments.

    Called once, the first time misen meets an argument type it does not know (built-in types, enums,
    dataclasses and attrs classes need no hasher). A `misen.Hasher` lists the qualified names of its types in
    ``TYPES`` and reduces a value to built-in values (ints, strings, tuples, dicts) that stand for it in the
    task identity. Reductions must be deterministic across processes and machines.

    Returns:
        A sequence of `misen.Hasher` *instances*, or ``None``.
    """


# ---------------------------------------------------------------------------------------------------------------
# lifecycle (observers: loggers, trackers, notifiers)
# ---------------------------------------------------------------------------------------------------------------


@hookspec
def misen_run_started(
    plan: Plan,
    executor: Executor,
    workspace: Workspace,
    cached: int,
    total: int,
    stale: list[tuple[Task[Any], list[str]]],
    events: RunEvents,
    run_id: str,
) -> None:
    """Observe the start of a run, after planning and before the executor starts any unit.

    The run's terminal display is itself an observer of this hook and the three below (registered for the
    duration of the run), so anything it shows, a plugin can show or record too.

    Args:
        plan: The `misen.executor.Plan`: the units to run (``plan.units``), the snapshot, the run id.
        executor: The executor that will run them.
        workspace: The workspace results go to.
        cached: How many tasks of the graph were already up to date.
        total: How many tasks the graph has.
        stale: Planned tasks that have a result of an earlier version of their code, each with the lines
            saying what changed.
        events: The run's `misen.executor.RunEvents`; an observer may call ``events.cancel()`` to stop the run
            (started units are stopped, the rest end ``cancelled``).
        run_id: The run's id (the unit hooks carry it too, so an observer can tell concurrent runs apart).
    """


@hookspec
def misen_unit_started(unit: WorkUnit, workspace: Workspace, where: str, run_id: str) -> None:
    """Observe a work unit starting, in the process that runs the experiment.

    Args:
        unit: The `misen.executor.WorkUnit` (its ``root`` task, the inlined ``tasks``, ``resources``).
        workspace: The workspace results go to.
        where: A short description of where it runs (``"local worker 3 (pid 1234)"``, ``"slurm job 42"``).
        run_id: The id of the run the unit belongs to.

    Called for every unit an executor starts; exceptions raised by an observer are reported and ignored.
    """


@hookspec
def misen_unit_finished(unit: WorkUnit, workspace: Workspace, outcome: UnitOutcome, run_id: str) -> None:
    """Observe a work unit ending, in the process that runs the experiment.

    Args:
        unit: The unit that ended.
        workspace: The workspace results went to.
        outcome: A `misen.executor.UnitOutcome`: ``status`` is one of ``done``, ``cached``, ``failed``,
            ``timeout``, ``cancelled``, ``skipped``, ``queued`` (left running by a detached run); ``error`` and
            ``log`` say why and where for failures.
        run_id: The id of the run the unit belongs to.
    """


@hookspec
def misen_run_finished(
    outcomes: dict[str, UnitOutcome], executor: Executor, workspace: Workspace, report: RunReport, run_id: str
) -> None:
    """Observe the end of a whole run (``exp.run()``, ``misen ... run``), interrupted ones included.

    Args:
        outcomes: Every unit's outcome, keyed by unit id (units that never ended are ``cancelled``).
        executor: The executor that ran them.
        workspace: The workspace results went to.
        report: The `misen.runner.RunReport` the run returns (counts, duration).
        run_id: The run's id.
    """


# ---------------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------------


@hookspec
def misen_add_commands(cli: click.Group) -> None:
    """Add commands to the ``misen`` command line.

    Called when ``misen`` runs (not on ``import misen``). Attach commands with ``cli.add_command(...)``. A plugin
    whose hook raises is reported on standard error and skipped; the rest of the command line keeps working.

    Args:
        cli: The top-level ``misen`` click group.
    """


# ---------------------------------------------------------------------------------------------------------------
# environments (native dependencies beside the uv venv)
# ---------------------------------------------------------------------------------------------------------------


@hookspec
def misen_add_environments() -> Sequence[type[Environment] | Lazy]:
    """Register native-environment classes: what a task's process needs beyond the uv venv.

    Called once, the first time a run has units to execute (or ``why``/``verify`` look at a task). The
    environment class is picked by ``[environment] type`` in ``.misen.toml``, or is the only one installed; its
    ``Settings`` attrs class receives the rest of the ``[environment]`` section.

    When a run starts, after the snapshot is taken and before the executor starts, misen calls
    `misen.environment.Environment.prepare` once per environment name the planned units use. Its answer, a
    `misen.environment.Activation` (directories put ahead of ``PATH``, variables such as ``CONDA_PREFIX``), is
    kept in ``Plan.activations`` and applied by `misen.worker` in each unit's process, for every executor alike;
    the in-process executor applies it to ``os.environ`` while each unit runs. ``prepare`` must build at most
    once for concurrent runs (a lock), publish a prefix only when complete (build in a temporary folder, then
    rename), and raise `misen.errors.MisenError` with one line saying what and where for bad input (a malformed
    lock file, an unknown environment or platform, a package that cannot be fetched, a full disk): then nothing
    runs.

    Returns:
        A sequence of `misen.environment.Environment` subclasses, each with ``PLUGIN_NAME`` (``"conda"``) and a
        ``Settings`` attrs class. ``None`` registers nothing. An entry may be a `misen.plugins.Lazy`, imported
        only when it is used.
    """
