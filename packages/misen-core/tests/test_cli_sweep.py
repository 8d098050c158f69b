"""Working at sweep scale through the real command line: CLI sweeps, labels, ``run --dry-run``, ``--force``,
``--retries``, ``-v`` on a pseudo-terminal, the results table, short results after a run, ``logs`` listing, and
the wording of ``count`` and ``result`` for skipped tasks."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import pytest
from test_cli_display import run_in_terminal
from test_cli_project import Project, make_project, one_error_line, pycache_dir


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "proj", pycache_dir())


TRAIN = "experiments.training"
SWEEP = ("--lr", "0.1,0.2", "--dim", "4,8")


def test_cli_sweep_runs_the_cross_product_and_every_command_accepts_it(project: Project) -> None:
    proc = project.exp(TRAIN, *SWEEP, "run")
    assert proc.returncode == 0, proc.stderr
    assert sorted(ln for ln in project.executed() if ln.startswith("train")) == [
        "train 0.1 4", "train 0.1 8", "train 0.2 4", "train 0.2 8",
    ]
    # Units are told apart in the run display by what differs between them.
    assert "✓ train[lr=0.1, dim=8] [done" in proc.stderr
    assert "Task(" not in proc.stderr
    listing = project.exp(TRAIN, *SWEEP, "list")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert len(lines) == 8
    assert lines[0].split() == ["✓", "metrics[lr=0.1,", "dim=4]", "evaluate[lr=0.1,", "dim=4]"]
    count = project.exp(TRAIN, *SWEEP, "count")
    assert count.stdout.splitlines() == ["Completed 12 of 12 tasks"]
    again = project.exp(TRAIN, "--lr", "0.1,0.2,0.3", "--dim", "4", "count")
    assert again.stdout.splitlines() == ["Completed 6 of 9 tasks", "(3 pending)"]
    # A value that is not a number names the option, in one line.
    assert "--lr" in one_error_line(project.exp(TRAIN, "--lr", "0.1,fast", "list"))


def test_dry_run_says_what_would_run_and_why_and_runs_nothing(project: Project) -> None:
    assert project.exp(TRAIN, "--lr", "0.1", "--dim", "4").returncode == 0
    project.executed()
    dry = project.exp(TRAIN, "--lr", "0.1,0.2", "--dim", "4", "run", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert project.executed() == []
    lines = dry.stdout.splitlines()
    assert lines[-1] == "dry run: 3 of 6 task(s) would run; nothing was run"
    assert any(ln.startswith("○ train[lr=0.2]") and "not cached" in ln for ln in lines), dry.stdout
    assert any(ln.startswith("○ evaluate[lr=0.2]") and "needs train[lr=0.2], which will run" in ln for ln in lines)
    # A code change is named as the reason.
    steps = project.root / "src/my_project/steps.py"
    steps.write_text(steps.read_text().replace('"accuracy": round(', '"accuracy": 0 + round('))
    dry = project.exp(TRAIN, "--lr", "0.1", "--dim", "4", "run", "-n")
    assert any(ln.startswith("○ evaluate") and "code changed" in ln and "evaluate" in ln for ln in dry.stdout.splitlines())
    assert project.exp(TRAIN, "--lr", "0.1", "--dim", "4", "run", "-n", "--force", "train").stdout.splitlines()[0] == (
        "○ train     forced (--force); its current result is kept aside"
    )
    nothing = project.exp(TRAIN, "--lr", "0.5", "--dim", "4", "run", "--dry-run")
    assert nothing.stdout.splitlines()[-1] == "dry run: 3 of 3 task(s) would run; nothing was run"


def test_force_recomputes_a_task_and_its_dependents_and_keeps_the_old_result(project: Project) -> None:
    assert project.exp(TRAIN, "--lr", "0.1", "--dim", "4").returncode == 0
    project.executed()
    results = project.root / ".misen" / "results"
    stored = sorted(p.name for p in results.glob("*/*"))
    forced = project.exp(TRAIN, "--lr", "0.1", "--dim", "4", "run", "--force", "metrics")
    assert forced.returncode == 0, forced.stderr
    assert project.executed() == ["evaluate 0.1 4", "plot"]  # train is upstream: untouched
    assert "2 current result(s) set aside" in forced.stderr
    assert set(stored) <= {p.name for p in results.glob("*/*")}  # the old results are still there
    # By function name, across a sweep.
    both = project.exp(TRAIN, "--lr", "0.1", "--dim", "4,8", "run", "--force", "train")
    assert both.returncode == 0, both.stderr
    assert sorted(project.executed()) == sorted(
        ["train 0.1 4", "train 0.1 8", "evaluate 0.1 4", "evaluate 0.1 8", "plot", "plot"]
    )
    assert "no named task or task function called 'nope'" in one_error_line(
        project.exp(TRAIN, "run", "--force", "nope")
    )


FLAKY = '''
import os

from misen import Experiment, Task, meta


@meta(id="FLAKY4CL1X", cache=True, retries=2)
def flaky(x: int) -> int:
    counter = os.environ["FLAKY_COUNTER"]
    n = int(open(counter).read()) if os.path.exists(counter) else 0
    open(counter, "w").write(str(n + 1))
    if n < 2:
        raise RuntimeError(f"flaky failure {n}")
    return x


class Flaky(Experiment):
    x: int = 1

    def tasks(self) -> dict[str, Task]:
        return {"value": Task(flaky, x=self.x)}


if __name__ == "__main__":
    Flaky.cli()
'''


def test_retries_from_meta_and_the_command_line_are_recorded(project: Project) -> None:
    project.write("src/my_project/experiments/flaky.py", FLAKY)
    counter = project.root / "counter.txt"
    env = {"FLAKY_COUNTER": str(counter)}
    # --retries 1 overrides @meta(retries=2): two attempts are not enough.
    failed = project.exp("experiments.flaky", "run", "--retries", "1", env=env)
    assert failed.returncode == 1
    assert "flaky failure 1" in failed.stderr
    counter.unlink()
    ok = project.exp("experiments.flaky", env=env)
    assert ok.returncode == 0, ok.stderr
    assert counter.read_text() == "3"
    prov = project.exp("experiments.flaky", "result", "value", "--provenance")
    lines = {ln.split()[0]: ln.split()[1] for ln in prov.stdout.splitlines()}
    assert lines["attempts"] == "3" and lines["retries"] == "2"
    log = project.exp("experiments.flaky", "logs", "value")
    assert "attempt 1 of 3 of flaky failed (RuntimeError: flaky failure 0); retrying" in log.stdout
    assert "must be 0 or more" in one_error_line(project.exp("experiments.flaky", "run", "--retries", "-1"))


def test_results_table_csv_json_and_results_frame(project: Project) -> None:
    assert project.exp(TRAIN, *SWEEP).returncode == 0
    table = project.exp(TRAIN, *SWEEP, "result", "metrics", "--table")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines() == [
        "lr  dim accuracy",
        "0.1   4        1",
        "0.1   8        1",
        "0.2   4        2",
        "0.2   8        2",
    ]
    rows = list(csv.DictReader(io.StringIO(project.exp(TRAIN, *SWEEP, "result", "metrics", "--csv").stdout)))
    assert rows[3] == {"lr": "0.2", "dim": "8", "accuracy": "2.0"}
    data = json.loads(project.exp(TRAIN, "--lr", "0.1,0.9", "--dim", "4", "result", "metrics", "--json").stdout)
    assert data == [{"lr": 0.1, "accuracy": 1.0, "dim": 4}, {"lr": 0.9, "status": "pending"}]
    script = (
        "from my_project.experiments.training import TrainingExperiment as T\n"
        "rows = T.results_frame('metrics', {'lr': [0.1, 0.2], 'dim': [4]})\n"
        "print(type(rows).__name__, list(rows['accuracy']))\n"
        "print(T(dim=8).results_frame('metrics', {'lr': [0.2]}).to_dict('records'))\n"
    )
    proc = project.run("-c", script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["DataFrame [1.0, 2.0]", "[{'lr': 0.2, 'accuracy': 2.0, 'dim': 8}]"]


def test_short_named_results_are_printed_after_a_successful_run(project: Project) -> None:
    proc = project.exp(TRAIN, "--lr", "0.3", "--dim", "4")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-2:] == ["metrics  {'accuracy': 3.0, 'dim': 4}", "plot     plot of accuracy 3.0"]


def test_skipped_tasks_are_not_counted_as_failed_nor_told_to_run_first(project: Project) -> None:
    failed = project.exp(TRAIN, "--lr", "0.6", env={"FAIL_TRAIN": "0.6"})
    assert failed.returncode == 1
    count = project.exp(TRAIN, "--lr", "0.6", "count")
    assert count.stdout.splitlines() == ["Completed 0 of 3 tasks", "(1 failed, 2 skipped (a dependency failed))"]
    line = one_error_line(project.exp(TRAIN, "--lr", "0.6", "result", "plot"))
    assert "it was skipped because train failed (RuntimeError: training diverged at lr=0.6)" in line
    assert "run it first" not in line


def test_logs_lists_many_and_job_logs_include_the_task_output(project: Project) -> None:
    assert project.exp(TRAIN, "--lr", "0.1,0.2", "--dim", "4", "--executor-type", "local").returncode == 0
    listing = project.exp(TRAIN, "--lr", "0.1,0.2", "--dim", "4", "logs")
    lines = listing.stdout.splitlines()
    assert lines[-1].startswith("6 logs: `logs NAME` prints one")
    # a quick task's log is kept in its record (the local executor's workers spool it), a slow one's in a file
    assert lines[0].startswith("train[lr=0.1]") and lines[0].endswith((".log", "in the task record"))
    job = project.exp(TRAIN, "--lr", "0.2", "--dim", "4", "logs", "--job", "metrics")
    assert job.returncode == 0, job.stderr
    assert "--- output of the task" in job.stdout


def test_run_verbose_streams_task_output_prefixed_by_label_on_a_terminal(project: Project) -> None:
    out, code = run_in_terminal(project, "-m", "my_project.experiments.training", *SWEEP, "run", "-v")
    assert code == 0, out
    text = out.replace("\r", "")
    for lr in ("0.1", "0.2"):
        for dim in ("4", "8"):
            assert f"train[lr={lr}, dim={dim}] │ training with lr={lr} dim={dim}" in text, text
    assert "run finished" in text


def test_logs_page_on_a_terminal(project: Project) -> None:
    assert project.exp(TRAIN, "--lr", "0.1,0.2", "--dim", "4").returncode == 0
    # A tiny terminal (LINES=5): two logs do not fit, so they go through $PAGER (here, one that marks each line).
    out, code = run_in_terminal(
        project, "-m", "my_project.experiments.training", "--lr", "0.1,0.2", "--dim", "4", "logs", "train",
        env={"PAGER": "sed s/^/PAGED:/", "LINES": "5"},
    )
    assert code == 0, out
    paged = [ln for ln in out.replace("\r", "").splitlines() if ln.startswith("PAGED:")]
    assert any("==> train[lr=0.1]" in ln for ln in paged) and any("training with lr=0.2 dim=4" in ln for ln in paged)


def test_a_task_whose_upstream_changed_is_not_said_to_have_changed_code(project: Project) -> None:
    assert project.exp(TRAIN, "--dim", "4").returncode == 0
    steps = project.root / "src/my_project/steps.py"
    steps.write_text(steps.read_text().replace('print(f"training with', 'print(f"Training with'))
    why = project.exp(TRAIN, "--dim", "4", "why", "metrics").stdout.splitlines()
    assert why[-2:] == ["  its code is unchanged; these dependencies changed:", "    train"], why
    proc = project.exp(TRAIN, "--dim", "4")
    assert proc.returncode == 0, proc.stderr
    stale = [ln.strip() for ln in proc.stderr.splitlines() if ln.startswith("  ~ ")]
    assert stale[0].startswith("~ train: changed: my_project.steps.train")
    assert stale[1:] == ["~ evaluate: a dependency's result changed", "~ plot: a dependency's result changed"]


def test_a_run_with_many_named_results_prints_a_few_and_counts_the_rest(project: Project) -> None:
    project.write(
        "src/my_project/experiments/many.py",
        """
        from misen import Experiment, Task, meta


        @meta(id="MANYSQ0001", cache=True)
        def square(i: int) -> int:
            return i * i


        class Many(Experiment):
            n: int = 25

            def tasks(self) -> dict[str, Task]:
                return {f"sq{i:02d}": Task(square, i=i) for i in range(self.n)}


        if __name__ == "__main__":
            Many.cli()
        """,
    )
    proc = project.exp("experiments.many", "--executor-type", "in-process")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["sq00  0", "sq01  1"] and lines[19] == "sq19  361"
    assert lines[20:] == ["… 5 more named results: `result NAME` prints one"]
