"""The seed's experiment command lines, run for real in subprocesses: run, list, tree, incomplete, count, logs,
result, named configs, sweeps, parameters before/after the subcommand, and bad input."""

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


TRAIN = "experiments.training"
SWEEP = "experiments.training_sweep"
CONFIG = "configs.training"


def test_run_then_cached_then_inspect(project: Project) -> None:
    proc = project.exp(TRAIN, "--lr", "0.1")
    assert proc.returncode == 0, proc.stderr
    assert project.executed() == ["train 0.1 256", "evaluate 0.1 256", "plot"]
    # Not a terminal: plain lines, no escape codes.
    assert "\x1b[" not in proc.stderr + proc.stdout
    assert "run finished" in proc.stderr

    again = project.exp(TRAIN, "run", "--lr", "0.1")
    assert again.returncode == 0, again.stderr
    assert project.executed() == []

    listing = project.exp(TRAIN, "list", "--lr", "0.1")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].startswith("✓ metrics") and lines[0].endswith("  evaluate")
    assert lines[1].startswith("✓ plot")

    # Other parameters: nothing done yet.
    other = project.exp(TRAIN, "list")
    assert [ln[:1] for ln in other.stdout.splitlines()] == ["○", "○"]

    count = project.exp(TRAIN, "--lr", "0.1", "count")
    assert count.stdout.splitlines()[0] == "Completed 3 of 3 tasks"
    count = project.exp(TRAIN, "count")
    assert count.stdout.splitlines() == ["Completed 0 of 3 tasks", "(3 pending)"]


def test_result_pretty_prints_and_not_cached_is_one_line(project: Project) -> None:
    missing = project.exp(TRAIN, "result", "metrics")
    assert missing.returncode == 1
    assert "not cached" in one_error_line(missing)
    assert missing.stdout == ""

    assert project.exp(TRAIN, "--dim", "8").returncode == 0
    res = project.exp(TRAIN, "result", "metrics", "--dim", "8")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "{'accuracy': 0.01, 'dim': 8}"
    res = project.exp(TRAIN, "--dim", "8", "result", "plot")
    assert res.stdout.strip() == "plot of accuracy 0.01"  # a string result prints as itself

    prov = project.exp(TRAIN, "--dim", "8", "result", "metrics", "--provenance")
    assert prov.returncode == 0, prov.stderr
    fields = dict(
        re.split(r"\s{2,}", ln.strip(), maxsplit=1) for ln in prov.stdout.splitlines() if ln.strip()
    )
    assert fields["executor"] == "in-process"
    assert fields["python"] == f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    # A quick task that succeeded in process: its log is in its record, and the line says how to print it.
    assert fields["log"] == "in the task record (2 lines): `logs metrics` prints it" and "log_text" not in fields


def test_named_config_runs_with_its_parameters(project: Project) -> None:
    proc = project.exp(CONFIG)
    assert proc.returncode == 0, proc.stderr
    assert project.executed() == ["train 0.1 512", "evaluate 0.1 512", "plot"]
    # Its result is reachable by importing __config__, as the seed shows.
    code = (
        "from my_project.configs.training import __config__ as training_experiment\n"
        "print(training_experiment['metrics'].result())\n"
    )
    got = project.run("-c", code)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "{'accuracy': 1.0, 'dim': 512}"
    # The config's values are the command line's defaults; flags still override them.
    helped = project.exp(CONFIG, "--help")
    assert re.search(r"--lr FLOAT\[,\.\.\.\]\s+default: 0\.1\b", helped.stdout)
    assert re.search(r"--dim INTEGER\[,\.\.\.\]\s+default: 512\b", helped.stdout)
    over = project.exp(CONFIG, "run", "--dim", "64")
    assert over.returncode == 0, over.stderr
    assert project.executed() == ["train 0.1 64", "evaluate 0.1 64", "plot"]


def test_python_api_run_and_result(project: Project) -> None:
    code = (
        "from my_project.experiments.training import TrainingExperiment\n"
        "report = TrainingExperiment(lr=0.1, dim=512).run()\n"
        "print(report.ok)\n"
        "metrics = TrainingExperiment(lr=0.1, dim=512)['metrics'].result()\n"
        "print(metrics)\n"
    )
    got = project.run("-c", code)
    assert got.returncode == 0, got.stderr
    # The task printed (the in-process executor shows task output), then the script did.
    assert got.stdout.splitlines() == [
        "training with lr=0.1 dim=512",
        "True",
        "{'accuracy': 1.0, 'dim': 512}",
    ]


def test_sweep_as_written(project: Project) -> None:
    proc = project.exp(SWEEP)
    assert proc.returncode == 0, proc.stderr
    ran = project.executed()
    assert sorted(x for x in ran if x.startswith("train")) == [
        "train 0.001 256",
        "train 0.001 512",
        "train 0.01 256",
        "train 0.01 512",
    ]
    res = project.exp(SWEEP, "result", "plot")
    assert res.stdout.strip() == "0.001,256:0.01; 0.001,512:0.01; 0.01,256:0.1; 0.01,512:0.1"
    assert project.exp(SWEEP, "count").stdout.splitlines() == ["Completed 9 of 9 tasks"]
    # Lists: repeated and comma-separated; the already computed (0.01, 256) is reused.
    proc = project.exp(SWEEP, "--lrs", "0.01", "--lrs", "0.5", "--dims", "256")
    assert proc.returncode == 0, proc.stderr
    assert sorted(project.executed()) == ["evaluate 0.5 256", "train 0.5 256"]
    proc = project.exp(SWEEP, "count", "--lrs", "0.01,0.5,0.7", "--dims", "256")
    assert proc.stdout.splitlines() == ["Completed 4 of 7 tasks", "(3 pending)"]


def test_tree_and_depth(project: Project) -> None:
    assert project.exp(TRAIN, "--lr", "0.2").returncode == 0
    tree = project.exp(TRAIN, "tree", "--lr", "0.2")
    assert tree.returncode == 0, tree.stderr
    assert tree.stdout.splitlines() == [
        "metrics ✓ evaluate",
        "└── ✓ train",
        "plot ✓ plot",
        "└── ✓ evaluate  (see above)",
    ]
    shallow = project.exp(TRAIN, "tree", "-L", "1")
    assert shallow.stdout.splitlines() == [
        "metrics ○ evaluate",
        "plot ○ plot",
    ]
    sweep = project.exp(SWEEP, "tree", "-L", "2", "--lrs", "0.2", "--dims", "256,512")
    lines = sweep.stdout.splitlines()
    assert lines[0] == "plot ○ plot_sweep"
    # (0.2, 256) was computed above; (0.2, 512) was not. Siblings are told apart by their upstream arguments.
    assert lines[1:] == [
        "├── ✓ evaluate[dim=256]",
        "└── ○ evaluate[dim=512]",
    ]
    assert "must be 1 or more" in one_error_line(project.exp(TRAIN, "tree", "-L", "0"))


def test_failure_shows_in_list_incomplete_and_exit_status(project: Project) -> None:
    failed = project.exp(TRAIN, "--lr", "0.3", env={"FAIL_TRAIN": "0.3"})
    assert failed.returncode == 1
    assert "training diverged at lr=0.3" in failed.stderr
    listing = project.exp(TRAIN, "list", "--lr", "0.3")
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert lines[0].startswith("✗ metrics")
    assert "error: " in lines[1] and "training diverged at lr=0.3" in lines[1]
    log = Path(lines[2].split("log: ", 1)[1])
    assert "training diverged at lr=0.3" in log.read_text()
    assert lines[3].startswith("✗ plot")

    incomplete = project.exp(TRAIN, "incomplete", "--lr", "0.3")
    marks = [ln[:1] for ln in incomplete.stdout.splitlines() if not ln.startswith(" ")]
    assert marks == ["✗", "✗", "✗"]
    assert "RuntimeError: training diverged at lr=0.3" in incomplete.stdout

    # Re-running retries what is not done, and then everything is complete.
    assert project.exp(TRAIN, "--lr", "0.3").returncode == 0
    assert project.executed()[-3:] == ["train 0.3 256", "evaluate 0.3 256", "plot"]
    done = project.exp(TRAIN, "incomplete", "--lr", "0.3")
    assert done.stdout.strip() == "✓ all 3 tasks are complete"


def test_logs_task_and_job(project: Project) -> None:
    assert project.exp(TRAIN, "--lr", "0.4", "--dim", "4").returncode == 0
    logs = project.exp(TRAIN, "logs", "--lr", "0.4", "--dim", "4")
    assert logs.returncode == 0, logs.stderr
    assert "training with lr=0.4 dim=4" in logs.stdout
    assert logs.stdout.count("==> ") == 3
    one = project.exp(TRAIN, "--lr", "0.4", "--dim", "4", "logs", "metrics", "--path")
    # A quick task that succeeded in process keeps its log in its record: no path, and a line saying where it is.
    assert one.returncode == 0 and one.stdout == ""
    assert "kept in the task record" in one.stderr and "`logs NAME`" in one.stderr
    none = project.exp(TRAIN, "logs", "metrics")
    assert "no task logs" in one_error_line(none)
    # The in-process executor writes no work-unit logs: --job says so in one line.
    job = project.exp(TRAIN, "logs", "--job", "--lr", "0.4", "--dim", "4")
    assert "no work-unit logs" in one_error_line(job)


def test_executor_and_workspace_flags_on_every_command(project: Project) -> None:
    # The configured executor is unusable; --executor-type chooses another one.
    project.write(".misen.toml", '[executor]\ntype = "no-such-executor"\n[workspace]\ntype = "disk"\n')
    bad = project.exp(TRAIN)
    assert "unknown executor type 'no-such-executor'" in one_error_line(bad)
    ok = project.exp(TRAIN, "--executor-type", "in-process")
    assert ok.returncode == 0, ok.stderr
    ok = project.exp(TRAIN, "run", "--executor-type", "in-process", "--workspace-type", "memory")
    assert ok.returncode == 0, ok.stderr
    assert len(project.executed()) == 6  # the memory workspace starts empty
    for command in ("list", "tree", "incomplete", "count", "logs", "result metrics", "why metrics"):
        proc = project.exp(TRAIN, *command.split(), "--workspace-type", "nope")
        assert "unknown workspace type 'nope'" in one_error_line(proc), command
    # --config replaces .misen.toml.
    project.write(
        "other.toml", '[executor]\ntype = "in-process"\n[workspace]\ntype = "disk"\ndirectory = "elsewhere"\n'
    )
    proc = project.exp(TRAIN, "--config", "other.toml", "--dim", "2")
    assert proc.returncode == 0, proc.stderr
    assert (project.root / "elsewhere").is_dir()
    assert project.exp(TRAIN, "count", "--dim", "2", "--config", "other.toml").stdout.startswith(
        "Completed 3 of 3"
    )
    assert "does not exist" in one_error_line(project.exp(TRAIN, "count", "--config", "missing.toml"))


def test_bad_input_is_one_clear_line(project: Project) -> None:
    cases = {
        ("--lrr", "0.1"): "No such option '--lrr'",
        ("--lr", "fast"): "Invalid value for '--lr': 'fast' is not a valid float",
        ("run", "--dim", "2.5"): "Invalid value for '--dim'",
        ("result", "nope"): "TrainingExperiment has no task 'nope' (its tasks: 'metrics', 'plot')",
        ("run", "nope"): "TrainingExperiment has no task 'nope'",
        ("--executor-type", "warp-drive"): "unknown executor type 'warp-drive'",
        ("frobnicate",): "No such command 'frobnicate'",
    }
    for args, expected in cases.items():
        proc = project.exp(TRAIN, *args)
        assert expected in one_error_line(proc), (args, proc.stderr)
    assert project.executed() == []


def test_help_lists_parameters_and_commands(project: Project) -> None:
    proc = project.exp(TRAIN, "--help")
    assert proc.returncode == 0
    for text in ("--lr FLOAT", "--dim INTEGER", "--executor-type", "--workspace-type", "--config"):
        assert text in proc.stdout
    for command in (
        "run",
        "list",
        "tree",
        "incomplete",
        "count",
        "logs",
        "result",
        "why",
        "accept",
        "verify",
    ):
        assert re.search(rf"^\s+{command}\s", proc.stdout, re.M), command
    sub = project.exp(TRAIN, "tree", "--help")
    assert "-L, --level" in sub.stdout and "--lr FLOAT" in sub.stdout


def test_job_logs_with_the_local_executor(project: Project) -> None:
    pytest.importorskip(
        "misen_executor_local", reason="work-unit logs come from an executor that starts processes"
    )
    proc = project.exp(TRAIN, "--executor-type", "local", "--dim", "3")
    assert proc.returncode == 0, proc.stderr
    assert project.executed() == ["train 0.001 3", "evaluate 0.001 3", "plot"]
    jobs = project.exp(TRAIN, "logs", "--job", "--path", "--dim", "3")
    assert jobs.returncode == 0, jobs.stderr
    paths = jobs.stdout.split()
    assert len(paths) == 3 and all(Path(p).is_file() for p in paths)
    one = project.exp(TRAIN, "logs", "metrics", "--job", "--dim", "3")
    assert one.returncode == 0 and one.stdout.startswith("==> evaluate")


def test_detach_needs_an_executor_with_a_scheduler(project: Project) -> None:
    proc = project.exp(TRAIN, "run", "--detach", "--executor-type", "in-process")
    assert "cannot detach" in one_error_line(proc) and "in-process" in one_error_line(proc)
    assert project.executed() == []  # refused before anything ran


def test_a_config_typo_is_reported_by_every_command(project: Project) -> None:
    (project.root / ".misen.toml").write_text('[executor]\ntype = "in-process"\ncaptur = true\n')
    for command in ("list", "count", "run"):
        line = one_error_line(project.exp(TRAIN, command))
        assert ".misen.toml" in line and "[executor]" in line and "'captur'" in line
