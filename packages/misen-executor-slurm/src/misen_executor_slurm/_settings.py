"""The ``[executor]`` settings of the slurm executor (`Settings`) and its resource rules (`Rule`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import attrs
from misen.executor import ExecutorSettings
from misen.resources import Resources

from misen_executor_slurm._rules import Condition, normalize_flags

__all__ = ["Rule", "Settings"]


def _to_flags(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple | dict):
        raise ValueError(f"{where} must be a list of flags or a table of flag = value, got {value!r}")
    return normalize_flags(list(value) if isinstance(value, tuple) else value, where=where)


def _rule_flags(value: Any) -> list[str]:
    return _to_flags(value, "rule flags")


def _default_flags(value: Any) -> list[str]:
    return _to_flags(value, "default_flags")


@attrs.define
class Rule:
    """Flags added to the jobs whose resources match a condition.

    In ``.misen.toml``::

        [[executor.rules]]
        when = "gpus > 0"
        flags = ["--partition=gpu"]
    """

    when: str = attrs.field(
        metadata={
            "help": "A condition over the task's resources: comparisons of cpus, gpus, nodes, memory (GiB), time "
            "(minutes), gpu_memory (GiB) or gpu_runtime with a literal, joined by and/or/not "
            '(e.g. "gpus > 0 and memory >= 64").'
        }
    )
    flags: Any = attrs.field(
        converter=_rule_flags,
        metadata={"help": "sbatch flags added when the condition holds (a list, or a table flag = value)."},
    )
    _condition: Condition = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        self._condition = Condition(self.when)

    def matches(self, resources: Resources) -> bool:
        return self._condition.matches(resources)


def _positive(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")


@attrs.define
class Settings(ExecutorSettings):
    """Settings of the slurm executor (the ``[executor]`` section with ``type = "slurm"``)."""

    partition: str | None = attrs.field(
        default=None,
        metadata={"help": "Partition to submit to (--partition); the cluster's default when unset."},
    )
    account: str | None = attrs.field(default=None, metadata={"help": "Account to charge (--account)."})
    qos: str | None = attrs.field(default=None, metadata={"help": "Quality of service (--qos)."})
    constraint: str | None = attrs.field(
        default=None, metadata={"help": 'Node features the jobs need (--constraint), e.g. "a100|h100".'}
    )
    default_flags: Any = attrs.field(
        factory=list,
        converter=_default_flags,
        metadata={
            "help": 'Extra sbatch flags for every job: a list (["--exclusive", "--mail-type=END"]) or a '
            'table (mail-type = "END", exclusive = true). They override the flags derived from settings and '
            "resources; --array, --dependency, --output, --error and --chdir are the executor's own."
        },
    )
    rules: list[Rule] = attrs.field(
        factory=list,
        metadata={
            "help": "Flags added by resource, applied in order after default_flags (a later value of an option "
            'wins): [[executor.rules]] when = "gpus > 0", flags = ["--partition=gpu"].'
        },
    )
    gpu_flag: Literal["gpus-per-node", "gres"] = attrs.field(
        default="gpus-per-node",
        metadata={"help": "How GPUs are requested: --gpus-per-node=N, or --gres=gpu:N for older clusters."},
    )
    poll_interval: float = attrs.field(
        default=2.0,
        validator=_positive,
        metadata={
            "help": "Seconds between status polls at first; one squeue call per poll for all of a run's jobs."
        },
    )
    max_poll_interval: float = attrs.field(
        default=60.0,
        validator=_positive,
        metadata={"help": "The poll interval grows by half each quiet poll, up to this many seconds."},
    )
    array_throttle: int | None = attrs.field(
        default=None,
        validator=_positive,
        metadata={"help": "At most this many elements of a job array run at once (--array=0-N%T)."},
    )
    max_array_size: int | None = attrs.field(
        default=None,
        validator=_positive,
        metadata={
            "help": "Largest job array to submit; bigger sweeps are split. Default: the cluster's MaxArraySize "
            "(from scontrol show config). 1 turns arrays off."
        },
    )
    snapshot_dir: Path | None = attrs.field(
        default=None,
        metadata={
            "help": "A directory on a file system every node shares, for code snapshots, job scripts, payloads "
            "and job logs. Default: the workspace's local directory (.misen/ for the disk workspace)."
        },
    )
    python: str | None = attrs.field(
        default=None,
        metadata={"help": "Python interpreter the jobs run (on the nodes). Default: the one running misen."},
    )
    backend: Literal["cli", "pyslurm", "auto"] = attrs.field(
        default="cli",
        metadata={
            "help": 'How to talk to SLURM: "cli" (sbatch, squeue, scontrol, sacct, scancel), "pyslurm" '
            '(fails with the reason when pyslurm is unusable) or "auto" (pyslurm when it imports and matches '
            "the cluster's version, else the CLI)."
        },
    )
    detach: bool = attrs.field(
        default=False,
        metadata={
            "help": "Return as soon as the whole graph is queued instead of waiting for it; `misen slurm cancel` "
            "cancels a detached run later."
        },
    )
    job_name: str = attrs.field(
        default="misen",
        metadata={"help": "Prefix of the job names (--job-name=PREFIX:TASK)."},
    )
