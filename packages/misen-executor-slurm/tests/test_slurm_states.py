"""Job endings → outcomes, from real squeue/scontrol output captured on the test cluster (data/states.json).

data/capture_states.py regenerates the file; it holds a completed, failed, timed-out, memory-killed,
cancelled, dependency-killed and node-failed job and a 3-element array, with the memory-killed job's log.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest
from misen_executor_slurm._cli import parse_sacct, parse_scontrol_jobs, parse_squeue
from misen_executor_slurm._states import is_active, outcome_from_state, read_outcome

DATA = json.loads((Path(__file__).parent / "data" / "states.json").read_text())
JOBS = DATA["jobs"]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "job.log"
    path.write_text("[misen] unit started\n")
    return path


@pytest.mark.parametrize(
    "parse,text", [(parse_squeue, DATA["squeue"]), (parse_scontrol_jobs, DATA["scontrol"])]
)
def test_both_parsers_read_every_job(parse, text) -> None:  # type: ignore[no-untyped-def]
    states = parse(text)
    expected = {
        JOBS["completed"]: "COMPLETED", JOBS["failed"]: "FAILED", JOBS["timeout"]: "TIMEOUT", JOBS["oom"]: "FAILED",
        JOBS["scancelled"]: "CANCELLED", JOBS["dependent"]: "CANCELLED", JOBS["node_fail"]: "NODE_FAIL",
        **{f"{JOBS['array']}_{i}": "COMPLETED" for i in range(3)},
    }  # fmt: skip
    assert {k: states[k].state for k in expected} == expected
    assert states[JOBS["dependent"]].reason == "DependencyNeverSatisfied"
    assert states[JOBS["node_fail"]].reason == "NodeDown"
    assert not any(is_active(s) for s in states.values())


def test_scontrol_gives_exit_codes_and_nodes() -> None:
    states = parse_scontrol_jobs(DATA["scontrol"])
    assert states[JOBS["failed"]].exit_code == "3:0"
    assert states[JOBS["completed"]].node


def outcome(kind: str, log: Path, source: str = "squeue"):  # type: ignore[no-untyped-def]
    job = JOBS[kind]
    parse = parse_squeue if source == "squeue" else parse_scontrol_jobs
    return outcome_from_state(job, parse(DATA[source])[job], log)


def test_mapping(log: Path) -> None:
    timeout = outcome("timeout", log)
    assert timeout.status == "timeout" and "time limit" in (timeout.error or "") and timeout.log == str(log)
    failed = outcome("failed", log, "scontrol")
    assert failed.status == "failed" and "exit code 3:0" in (failed.error or "")
    assert outcome("scancelled", log).status == "cancelled"
    dep = outcome("dependent", log)
    assert dep.status == "skipped" and "dependency failed" in (dep.error or "")
    node = outcome("node_fail", log)
    assert node.status == "failed" and "node failed (NODE_FAIL (NodeDown))" in (node.error or "")
    done_without_outcome = outcome("completed", log)
    assert done_without_outcome.status == "failed" and "wrote no outcome" in (
        done_without_outcome.error or ""
    )
    assert all(o.where.startswith("slurm job ") for o in (timeout, failed, node))


def test_memory_kill_is_told_from_the_job_log(log: Path) -> None:
    # Without a cgroup plugin SLURM reports a memory kill as FAILED; the log says what happened.
    assert outcome("oom", log).error and "out of memory" not in (outcome("oom", log).error or "")
    log.write_text(DATA["oom_log"])
    oom = outcome("oom", log)
    assert oom.status == "failed" and "ran out of memory" in (oom.error or "")
    # clusters with task/cgroup say OUT_OF_MEMORY outright
    state = attrs.evolve(
        parse_squeue(DATA["squeue"])[JOBS["failed"]], state="OUT_OF_MEMORY", reason="OutOfMemory"
    )
    log.write_text("")
    assert "ran out of memory (OUT_OF_MEMORY" in (outcome_from_state(JOBS["failed"], state, log).error or "")


def test_vanished_job(log: Path) -> None:
    gone = outcome_from_state("4242", None, log)
    assert gone.status == "failed"
    assert gone.error == (
        f"job 4242 vanished without writing an outcome (cancelled, OOM-killed or node failure); see {log}"
    )


def test_outcome_file_wins_and_gets_the_job_log(tmp_path: Path, log: Path) -> None:
    path = tmp_path / "u.outcome.json"
    assert read_outcome(path, job="7", log=log) is None
    path.write_text(json.dumps({"status": "done", "error": None, "log": None, "duration": 1.5, "where": ""}))
    done = read_outcome(path, job="7", log=log)
    assert done is not None and done.status == "done" and done.log == str(log) and done.where == "slurm job 7"
    path.write_text("{not json")
    broken = read_outcome(path, job="7", log=log)
    assert broken is not None and broken.status == "failed" and "unreadable outcome" in (broken.error or "")


def test_sacct_parsing() -> None:
    # sacct is off on the test cluster (exit 1: accounting storage is disabled); its -P format is fixed:
    text = "11|COMPLETED|0:0|vm\n12|CANCELLED by 0|0:15|vm\n12.batch|CANCELLED|0:15|vm\n13_2|TIMEOUT|0:0|vm\n"
    states = parse_sacct(text)
    assert DATA["sacct_rc"] == 1
    assert {k: v.state for k, v in states.items()} == {
        "11": "COMPLETED",
        "12": "CANCELLED",
        "13_2": "TIMEOUT",
    }
