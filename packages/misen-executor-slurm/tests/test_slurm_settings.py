"""Settings from .misen.toml, the rule condition language, sbatch flags, job groups and job scripts."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest
from misen.errors import ConfigError
from misen.executor import WorkUnit
from misen.resources import Resources
from misen.settings import structure_settings
from misen_executor_slurm._rules import Condition, merge_flags, normalize_flags
from misen_executor_slurm._scripts import group_units, job_flags, render_script, resource_flags
from misen_executor_slurm.executor import Rule, Settings, SlurmExecutor

WHERE = "/p/.misen.toml: [executor]"


def settings(**data: object) -> Settings:
    return structure_settings(Settings, dict(data), where=WHERE)  # type: ignore[no-any-return]


def test_every_field_has_help() -> None:
    for cls in (Settings, Rule):
        for field in attrs.fields(cls):
            if field.init and not field.name.startswith("_"):
                assert field.metadata.get("help"), f"{cls.__name__}.{field.name} has no help"


def test_structure_full_section() -> None:
    s = settings(
        partition="cpu",
        account="lab",
        qos="long",
        constraint="avx512",
        default_flags={"exclusive": True, "mail-type": "END", "requeue": False},
        rules=[{"when": "gpus > 0", "flags": ["--partition=gpu"]}],
        array_throttle=4,
        max_array_size=50,
        snapshot_dir="/shared/misen",
        backend="auto",
        detach=True,
    )
    assert s.default_flags == ["--exclusive", "--mail-type=END"]
    assert s.rules[0].flags == ["--partition=gpu"]
    assert s.snapshot_dir == Path("/shared/misen")
    assert s.detach is True


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"partiton": "x"}, "unknown key 'partiton'"),
        ({"backend": "rest"}, "backend"),
        ({"default_flags": ["exclusive"]}, "'exclusive' is not an sbatch flag"),
        ({"default_flags": ["--array=0-3"]}, "--array is set by the slurm executor itself"),
        ({"default_flags": ["-d afterok:1"]}, "--dependency is set by the slurm executor itself"),
        ({"default_flags": "--exclusive"}, "must be a list of flags or a table"),
        ({"rules": [{"when": "gpus >> 0", "flags": []}]}, "condition 'gpus >> 0'"),
        ({"rules": [{"when": "gpu > 0", "flags": []}]}, "unknown field 'gpu'"),
        ({"rules": [{"when": "gpus > 0"}]}, "rules[0].flags"),
        ({"poll_interval": 0}, "poll_interval must be positive"),
        ({"array_throttle": -2}, "array_throttle must be positive"),
    ],
)
def test_bad_settings_name_file_and_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings(**data)
    assert WHERE in str(err.value)
    assert message in str(err.value)


def test_executor_takes_keyword_overrides() -> None:
    ex = SlurmExecutor(partition="gpu", poll_interval=0.5)
    assert ex.settings.partition == "gpu"
    assert ex.describe() == "slurm (partition gpu)"
    with pytest.raises(ConfigError, match="unknown key 'partitionn'"):
        SlurmExecutor(partitionn="gpu")


@pytest.mark.parametrize(
    ("text", "res", "expected"),
    [
        ("gpus > 0", {"gpus": 1}, True),
        ("gpus > 0", {}, False),
        ("memory >= 64 and cpus >= 8", {"memory": 64, "cpus": 8}, True),
        ("memory >= 64 and cpus >= 8", {"memory": 64, "cpus": 4}, False),
        ("gpus > 0 or time > 1440", {"time": 2000}, True),
        ("not (gpus > 0)", {}, True),
        ("time > 60", {}, False),  # no limit never matches a comparison
        ("time == none", {}, True),
        ("gpu_runtime == 'rocm' and gpus >= 2", {"gpus": 2, "gpu_runtime": "rocm"}, True),
        ("gpu_memory > 40", {"gpus": 1, "gpu_memory": 80}, True),
        ("nodes != 1", {}, False),
    ],
)
def test_condition(text: str, res: dict[str, object], expected: bool) -> None:
    assert Condition(text).matches(Resources(**res)) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "gpus",
        "gpus >",
        "gpus > 0 and",
        "__import__('os') > 0",
        "gpus > 'a'",
        "gpu_runtime > 'cuda'",
        "(gpus > 0",
    ],
)
def test_condition_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"condition|empty"):
        Condition(text)


def test_flags_normalise_and_merge() -> None:
    assert normalize_flags({"p": "gpu", "exclusive": True, "--qos": "x"}, where="w") == [
        "-p gpu",
        "--exclusive",
        "--qos=x",
    ]
    assert merge_flags(["--partition=a", "--mem=1G", "-p b"]) == ["-p b", "--mem=1G"]
    with pytest.raises(ValueError, match="line break"):
        normalize_flags(["--comment=a\n#SBATCH --x"], where="w")


def test_resource_flags() -> None:
    s = settings()
    res = Resources(cpus=4, memory=0.5, time=90.5, gpus=2, nodes=2)
    assert resource_flags(res, s) == [
        "--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=4", "--mem=512M", "--time=1:30:30", "--gpus-per-node=2",
    ]  # fmt: skip
    assert "--gres=gpu:2" in resource_flags(res, settings(gpu_flag="gres"))
    assert not any(f.startswith("--mem") for f in resource_flags(Resources(memory=0), s))
    assert "--mem=16G" in resource_flags(Resources(memory=16), s)


def test_job_flags_order_settings_defaults_rules() -> None:
    s = settings(
        partition="cpu",
        account="lab",
        default_flags=["--mem=2G", "--exclusive"],
        rules=[
            {"when": "gpus > 0", "flags": ["--partition=gpu", "--qos=gpu"]},
            {"when": "gpus > 1", "flags": ["-p big"]},
        ],
    )
    cpu = job_flags(Resources(memory=8), s)
    assert "--partition=cpu" in cpu and "--mem=2G" in cpu and "--mem=8G" not in cpu and "--account=lab" in cpu
    one = job_flags(Resources(gpus=1), s)
    assert "--partition=gpu" in one and "--qos=gpu" in one and "--partition=cpu" not in one
    two = job_flags(Resources(gpus=2), s)
    assert "-p big" in two and "--partition=gpu" not in two


def _unit(uid: str, deps: tuple[str, ...] = (), **res: object) -> WorkUnit:
    class Root:
        name = "train"

    return WorkUnit(
        id=uid, root=Root(), tasks=(), resources=Resources(**res), deps=deps, label=f"train({uid})"
    )  # type: ignore[arg-type]


def test_group_units_makes_arrays_of_equal_independent_units() -> None:
    s = settings()
    units = [
        _unit("data"),
        *[_unit(f"t{i}", ("data",), memory=1) for i in range(5)],
        _unit("big", ("data",), memory=4),
        *[_unit(f"e{i}", (f"t{i}",), memory=1) for i in range(5)],
        _unit("report", tuple(f"e{i}" for i in range(5))),
    ]
    groups = group_units(units, s, max_array_size=2)
    shapes = [[u.id for u in g.units] for g in groups]
    assert shapes[:4] == [["data"], ["t0", "t1"], ["t2", "t3"], ["t4"]]
    assert ["big"] in shapes and ["report"] in shapes and ["e3"] in shapes
    position = {u.id: i for i, g in enumerate(groups) for u in g.units}
    for u in units:
        assert all(position[d] < position[u.id] for d in u.deps)
    # a cached dependency is dropped, so units depending only on it group with independent ones
    groups = group_units([_unit("a", ("cached",)), _unit("b")], s, max_array_size=10, dropped={"cached"})
    assert [len(g.units) for g in groups] == [2] and groups[0].deps == ()


def test_render_array_script(tmp_path: Path) -> None:
    s = settings(partition="debug")
    group = group_units([_unit("u1", memory=1), _unit("u2", memory=1)], s, max_array_size=10)[0]
    text = render_script(
        group,
        python="/opt/py 3/bin/python",
        run_dir=tmp_path,
        workdir=tmp_path,
        job_name="misen",
        log=tmp_path / "l_%a.log",
        run_id="r1",
    )
    assert text.startswith("#!/bin/bash\n")
    assert "#SBATCH --partition=debug" in text and "#SBATCH --mem=1G" in text
    assert "IDS=(u1 u2)" in text and "${IDS[$SLURM_ARRAY_TASK_ID]}" in text
    assert "'/opt/py 3/bin/python' -m misen.worker run" in text
    name = re.search(r"--job-name=(\S+)", text)
    assert name and " " not in name.group(1)


def test_chosen_and_configured_from_misen_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from misen.runner import resolve_executor

    (tmp_path / ".misen.toml").write_text(
        '[executor]\ntype = "slurm"\npartition = "gpu"\n\n[[executor.rules]]\nwhen = "gpus > 1"\nflags = ["--qos=big"]\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MISEN_CONFIG", raising=False)
    ex = resolve_executor(None)
    assert isinstance(ex, SlurmExecutor)
    assert ex.settings.partition == "gpu" and ex.settings.rules[0].flags == ["--qos=big"]
    (tmp_path / ".misen.toml").write_text('[executor]\ntype = "slurm"\npartiton = "gpu"\n')
    with pytest.raises(ConfigError, match=r"\.misen\.toml: \[executor\]: unknown key 'partiton'"):
        resolve_executor(None)


def test_skip_reason_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from misen_executor_slurm import testing

    monkeypatch.setattr(testing.shutil, "which", lambda name: None)
    monkeypatch.setattr(testing, "SBIN", Path("/nonexistent"))
    reason = testing.missing_requirements()
    assert reason is not None and "munged" in reason and "slurmctld" in reason and "apt-get install" in reason
