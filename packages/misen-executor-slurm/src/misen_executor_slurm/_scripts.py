"""From work units to SLURM jobs: sbatch flags from resources and settings, job groups (arrays) and job scripts."""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterable
from pathlib import Path

import attrs
from misen.executor import WorkUnit
from misen.resources import Resources

from misen_executor_slurm._rules import merge_flags
from misen_executor_slurm._settings import Settings

__all__ = ["JobGroup", "group_units", "job_flags", "render_script", "resource_flags"]


def _memory(gib: float) -> str:
    if float(gib).is_integer():
        return f"{int(gib)}G"
    return f"{math.ceil(gib * 1024)}M"


def _time(minutes: float) -> str:
    seconds = math.ceil(minutes * 60)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def resource_flags(res: Resources, settings: Settings) -> list[str]:
    """The sbatch flags a task's `Resources` ask for (memory 0 leaves ``--mem`` to the cluster's default)."""
    flags = [f"--nodes={res.nodes}", "--ntasks-per-node=1", f"--cpus-per-task={res.cpus}"]
    if res.memory:
        flags.append(f"--mem={_memory(res.memory)}")
    if res.time is not None:
        flags.append(f"--time={_time(res.time)}")
    if res.gpus:
        if settings.gpu_flag == "gres":
            flags.append(f"--gres=gpu:{res.gpus}")
        else:
            flags.append(f"--gpus-per-node={res.gpus}")
    return flags


def job_flags(res: Resources, settings: Settings) -> list[str]:
    """All flags of a job: resources, then partition/account/qos/constraint, default_flags, matching rules.

    A later value of the same option replaces an earlier one, so ``default_flags`` and rules can override what
    resources and settings derive.
    """
    flags = resource_flags(res, settings)
    for option in ("partition", "account", "qos", "constraint"):
        value = getattr(settings, option)
        if value:
            flags.append(f"--{option}={value}")
    flags += settings.default_flags
    for rule in settings.rules:
        if rule.matches(res):
            flags += rule.flags
    return merge_flags(flags)


@attrs.define
class JobGroup:
    """Units submitted as one job (one unit) or one job array (several, same flags, same dependencies)."""

    name: str
    units: list[WorkUnit]
    flags: list[str]
    #: Ids of the units (outside this group) all of the group's units wait for.
    deps: tuple[str, ...]

    @property
    def is_array(self) -> bool:
        return len(self.units) > 1


def group_units(
    units: Iterable[WorkUnit],
    settings: Settings,
    max_array_size: int,
    *,
    dropped: set[str] | frozenset[str] = frozenset(),
) -> list[JobGroup]:
    """Group units into jobs, in an order where each group comes after the groups it depends on.

    Units with equal flags and equal dependencies (ignoring ``dropped`` ones, e.g. already cached) become one
    array, split into chunks of ``max_array_size``; such units cannot depend on one another.
    """
    buckets: dict[tuple[tuple[str, ...], tuple[str, ...]], list[WorkUnit]] = {}
    order: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    for unit in units:
        deps = tuple(sorted(d for d in unit.deps if d not in dropped))
        key = (tuple(job_flags(unit.resources, settings)), deps)
        if key not in buckets:
            buckets[key] = []
            order.append(key)
        buckets[key].append(unit)
    # Plan order puts dependencies first, and a bucket's units share their dependencies, so ordering buckets
    # by their first unit keeps every group after the groups it waits for.
    groups: list[JobGroup] = []
    size = max(1, max_array_size)
    for key in order:
        members = buckets[key]
        for start in range(0, len(members), size):
            chunk = members[start : start + size]
            groups.append(JobGroup(_name(chunk, len(groups)), chunk, list(key[0]), key[1]))
    return groups


def _name(units: list[WorkUnit], index: int) -> str:
    fn = re.sub(r"[^A-Za-z0-9_.-]+", "_", units[0].root.name)[:40].strip("_") or "task"
    return f"{index:04d}-{fn}" + (f"-x{len(units)}" if len(units) > 1 else "")


def render_script(
    group: JobGroup,
    *,
    python: str,
    run_dir: Path,
    workdir: Path,
    job_name: str,
    log: Path,
    run_id: str,
) -> str:
    """The batch script of a group: ``#SBATCH`` lines, then ``python -m misen.worker run`` on the unit's payload.

    Payloads and outcomes live at ``run_dir/units/<unit id>.payload`` / ``.outcome.json``; an array picks its
    unit by ``SLURM_ARRAY_TASK_ID``.
    """
    q = shlex.quote
    label = group.units[0].label if not group.is_array else f"{group.units[0].root.name} x{len(group.units)}"
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={_job_name(job_name, label)}",
        f"#SBATCH --output={log}",
        f"#SBATCH --chdir={workdir}",
        *(f"#SBATCH {flag}" for flag in group.flags),
        f"# misen run {run_id}: {len(group.units)} work unit(s)",
        *(f"#   [{i}] {u.id} {u.label[:200]}" for i, u in enumerate(group.units)),
        "set -u",
        f"UNITS={q(str(run_dir / 'units'))}",
    ]
    if group.is_array:
        lines += [
            "IDS=(" + " ".join(u.id for u in group.units) + ")",
            'UNIT="${IDS[$SLURM_ARRAY_TASK_ID]}"',
            'JOB="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
        ]
    else:
        lines += [f"UNIT={group.units[0].id}", 'JOB="$SLURM_JOB_ID"']
    lines += [
        f'exec {q(python)} -m misen.worker run "$UNITS/$UNIT.payload" --outcome "$UNITS/$UNIT.outcome.json" '
        '--job-id "$JOB" --where "slurm job $JOB on $(hostname)"',
        "",
    ]
    return "\n".join(lines)


def _job_name(prefix: str, label: str) -> str:
    # #SBATCH lines split on whitespace and a job name shows in squeue: keep it one plain word.
    text = f"{prefix}:{label}" if prefix else label
    return re.sub(r"[^\w.:=,()+-]+", "_", text)[:100]
