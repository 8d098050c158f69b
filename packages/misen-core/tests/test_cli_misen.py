"""The ``misen`` command, for real in subprocesses: experiment targets, fill, plugins, config, plugin commands,
and the reproducibility commands (why, accept, verify) of an experiment's command line."""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import pytest
from test_cli_project import Project, make_project, one_error_line, pycache_dir


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "proj", pycache_dir())


TARGET = "my_project.experiments.training:TrainingExperiment"


def test_experiment_targets(project: Project) -> None:
    # The seed's form: parameters after the subcommand.
    proc = project.misen("experiment", TARGET, "run", "--lr", "0.1")
    assert proc.returncode == 0, proc.stderr
    assert project.executed() == ["train 0.1 256", "evaluate 0.1 256", "plot"]
    count = project.misen("experiment", TARGET, "--lr", "0.1", "count")
    assert count.stdout.splitlines() == ["Completed 3 of 3 tasks"]
    # A module holding __config__, named alone or with :__config__.
    assert project.misen("experiment", "my_project.configs.training").returncode == 0
    assert project.executed() == ["train 0.1 512", "evaluate 0.1 512", "plot"]
    for target in ("my_project.configs.training", "my_project.configs.training:__config__"):
        listing = project.misen("experiment", target, "list")
        assert [ln[:1] for ln in listing.stdout.splitlines()] == ["✓", "✓"], target
    # A module defining exactly one experiment class.
    sweep = project.misen("experiment", "my_project.experiments.training_sweep", "count")
    assert sweep.stdout.splitlines()[0] == "Completed 0 of 9 tasks"
    helped = project.misen("experiment", TARGET, "--help")
    assert "--lr FLOAT" in helped.stdout and "misen experiment" in helped.stdout


def test_experiment_target_errors(project: Project) -> None:
    cases = {
        "no_such_pkg.mod:Exp": "cannot import 'no_such_pkg.mod': no module named 'no_such_pkg'",
        "my_project.experiments.training:Nope": "has no attribute 'Nope'",
        "my_project.steps:train": "is a function, not an Experiment class or instance",
        "my_project.steps": "has no __config__",
        "not a target": "is not a target",
    }
    for target, expected in cases.items():
        assert expected in one_error_line(project.misen("experiment", target)), target
    assert "No such option '--lrr'" in one_error_line(project.misen("experiment", TARGET, "--lrr", "1"))
    assert "No such command 'nope'" in one_error_line(project.misen("nope"))
    bare = project.misen()
    assert bare.returncode == 0 and bare.stdout.startswith("Usage: misen [OPTIONS] COMMAND")
    version = project.misen("--version")
    assert version.returncode == 0 and re.fullmatch(r"misen \d+\.\d+\.\d+\S*\n", version.stdout)


def test_missing_id_is_one_line(project: Project) -> None:
    project.write(
        "src/my_project/experiments/noid.py",
        """
        from misen import Experiment, Task, meta

        @meta(cache=True)
        def step(x: int) -> int:
            return x

        class NoId(Experiment):
            x: int = 1

            def tasks(self) -> dict[str, Task]:
                return {"step": Task(step, x=self.x)}
        """,
    )
    line = one_error_line(project.misen("experiment", "my_project.experiments.noid:NoId", "run"))
    assert "has no @meta(id=...)" in line and "misen fill" in line


def test_fill_inserts_and_renews_ids(project: Project) -> None:
    path = project.write(
        "src/my_project/more.py",
        """
        from misen import meta

        @meta(cache=True)  # keep this comment
        def a(x: int) -> int:
            return x

        @meta
        def b() -> None: ...
        """,
    )
    proc = project.misen("fill")
    assert proc.returncode == 0, proc.stderr
    text = path.read_text()
    ids = re.findall(r'@meta\(id="([A-Z0-9]{10})"', text)
    assert len(ids) == 2 and len(set(ids)) == 2
    assert f'@meta(id="{ids[0]}", cache=True)  # keep this comment' in text
    assert f"more.py:3: a: set id={ids[0]!r}" in proc.stdout.replace("src/my_project/", "")
    # Existing ids (also the project's other files) are never touched.
    steps = (project.root / "src/my_project/steps.py").read_text()
    assert 'id="TRAIN4CL1X"' in steps
    again = project.misen("fill")
    assert again.stdout.strip() == "every task function already has an id"
    renewed = project.misen("fill", "--renew", "a")
    assert renewed.returncode == 0, renewed.stderr
    new_ids = re.findall(r'@meta\(id="([A-Z0-9]{10})"', path.read_text())
    assert new_ids[0] != ids[0] and new_ids[1] == ids[1]
    assert "no @meta function named 'zzz'" in one_error_line(project.misen("fill", "--renew", "zzz"))


def test_plugins_and_config(project: Project) -> None:
    proc = project.misen("plugins")
    assert proc.returncode == 0, proc.stderr
    rows = [ln.split() for ln in proc.stdout.splitlines()]
    assert rows[0] == ["KIND", "NAME", "PACKAGE", "VERSION", "MODULE"]
    found = {(r[0], r[1]): r for r in rows[1:]}
    assert found[("executor", "in-process")][4] == "misen._builtin.in_process"
    assert found[("workspace", "memory")][4] == "misen._builtin.memory"
    assert ("hasher", "stdlib") in found
    config = project.misen("config")
    assert config.returncode == 0, config.stderr
    toml = str(project.root / ".misen.toml")
    assert f'  type = "in-process"    # {toml}' in config.stdout
    assert f'  directory = "{project.root / ".misen"}"    # {toml}' in config.stdout
    assert '  code_changes = "track"    # default' in config.stdout
    project.write(".misen.toml", "[workspace]\nbogus = 1\n[nonsense]\n")
    assert "unknown section [nonsense]" in one_error_line(project.misen("config"))


PLUGIN = '''
import click
from misen import hookimpl


@hookimpl
def misen_add_commands(cli):
    @cli.command("hello")
    def hello():
        """Say hello."""
        click.echo("hello from a plugin")
'''

BROKEN = """
from misen import hookimpl


@hookimpl
def misen_add_commands(cli):
    raise RuntimeError("this plugin is broken")
"""


def _fake_distribution(site: Path, name: str, module: str, source: str) -> None:
    (site / f"{module}.py").write_text(source)
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[misen]\ncommands-{module} = {module}\n")


def test_plugin_commands_and_a_broken_plugin(project: Project, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _fake_distribution(site, "demo-plugin", "demo_plugin", PLUGIN)
    _fake_distribution(site, "broken-plugin", "broken_plugin", BROKEN)
    env = {"PYTHONPATH": f"{site}:{project.root / 'src'}"}
    proc = project.misen("hello", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "hello from a plugin"
    assert (
        "plugin 'commands-broken_plugin' failed to add its commands (RuntimeError: this plugin is broken)"
        in proc.stderr
    )
    helped = project.misen("--help", env=env)
    assert helped.returncode == 0
    assert re.search(r"^\s+hello\s+Say hello\.", helped.stdout, re.M)
    assert re.search(r"^\s+experiment\s", helped.stdout, re.M)
    # Built-in commands do not even load plugins.
    config = project.misen("config", env=env)
    assert config.returncode == 0 and "broken" not in config.stderr


def test_why_accept_after_a_harmless_edit(project: Project) -> None:
    assert project.exp("experiments.training", "--dim", "16").returncode == 0
    project.executed()
    steps = project.root / "src/my_project/steps.py"
    # A semantic edit that gives the same results (a refactor the normalizer cannot see through).
    steps.write_text(
        steps.read_text().replace('round(trained_model["lr"] * 10, 6)', 'round(10 * trained_model["lr"], 6)')
    )
    listing = project.exp("experiments.training", "list", "--dim", "16")
    assert [ln[:1] for ln in listing.stdout.splitlines()] == ["◐", "◐"], listing.stdout
    why = project.exp("experiments.training", "why", "metrics", "--dim", "16")
    assert why.returncode == 0, why.stderr
    assert "EVAL4CL1XX" in why.stdout and "evaluate" in why.stdout
    accepted = project.exp("experiments.training", "accept", "--dim", "16")
    assert accepted.returncode == 0, accepted.stderr
    assert "✓ evaluate: accepted" in accepted.stdout
    listing = project.exp("experiments.training", "list", "--dim", "16")
    assert [ln[:1] for ln in listing.stdout.splitlines()] == ["✓", "✓"], listing.stdout
    assert project.executed() == []
    prov = project.exp("experiments.training", "result", "metrics", "--provenance", "--dim", "16")
    assert re.search(r"^accepted_from\s+task=", prov.stdout, re.M), prov.stdout
    assert project.exp("experiments.training", "--dim", "16").returncode == 0
    assert project.executed() == []


NOISY = """
import random

from misen import Experiment, Task, meta


@meta(id="STEADY4CLI", cache=True)
def steady(x: int) -> int:
    return x * 2


@meta(id="NOISY4CLIX", cache=True)
def noisy(x: int) -> float:
    return random.random() + x


class Noisy(Experiment):
    x: int = 1

    def tasks(self) -> dict[str, Task]:
        return {"steady": Task(steady, x=self.x), "noisy": Task(noisy, x=self.x)}

if __name__ == "__main__":
    Noisy.cli()
"""


def test_verify_names_the_non_deterministic_task(project: Project) -> None:
    project.write("src/my_project/experiments/noisy.py", NOISY)
    assert project.exp("experiments.noisy").returncode == 0
    proc = project.exp("experiments.noisy", "verify")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert any(ln.startswith("✓ steady: reproduced") for ln in lines), proc.stdout
    assert any(ln.startswith("✗ noisy: NOT reproduced") for ln in lines), proc.stdout
    assert lines[-1] == "Verified 2 task(s): 1 reproduced, 1 differ; non-deterministic: noisy"
    only = project.exp("experiments.noisy", "verify", "steady")
    assert (
        only.returncode == 0 and only.stdout.splitlines()[-1] == "Verified 1 task(s): 1 reproduced, 0 differ"
    )
    sample = project.exp("experiments.noisy", "verify", "--sample", "1")
    assert sample.stdout.splitlines()[-1].startswith("Verified 1 task(s)")
    assert "must be 1 or more" in one_error_line(project.exp("experiments.noisy", "verify", "--sample", "0"))
    # Verifying changed nothing: the stored results are the same.
    assert project.exp("experiments.noisy", "count").stdout.startswith("Completed 2 of 2")
