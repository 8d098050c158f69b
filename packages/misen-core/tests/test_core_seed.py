"""The seed's "Tasks" and "Caching and versioning" examples, as written, on the in-process executor and memory workspace."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

TASKS_EXAMPLE = '''
from misen import cache
from misen import Task, meta

@meta(cache=True)
def add(a: int, b: int) -> int:
    return a + b

handle = Task(add, a=1, b=2)
'''

COMPOSE_EXAMPLE = '''
from misen import Task, meta

@meta(id="3X2CLIX6MM", cache=True)
def train(lr: float, dim: int) -> dict:
    return {"lr": lr, "dim": dim}

@meta(id="EVAL000001", cache=True)
def evaluate(trained_model: dict) -> float:
    return trained_model["lr"] * trained_model["dim"]

@meta(id="PLOT000001")
def plot(metrics: float) -> str:
    return f"plot of {metrics}"

train_task = Task(train, lr=0.001, dim=256)
eval_task  = Task(evaluate, trained_model=train_task.T)
plot_task  = Task(plot, metrics=eval_task.T)
'''


def run_script(tmp_path: Path, code: str) -> str:
    script = tmp_path / "example.py"
    script.write_text(textwrap.dedent(code))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_tasks_section_as_written(tmp_path: Path) -> None:
    out = run_script(tmp_path, TASKS_EXAMPLE + '''
print(type(handle).__name__, handle.arguments)
try:
    handle.result(workspace="memory")
except Exception as exc:
    print(type(exc).__name__, exc)
''')
    assert "Task {'a': 1, 'b': 2}" in out
    # Without an id, running asks for `misen fill`.
    assert "MissingIdError" in out and "misen fill" in out


def test_composition_runs_in_process(tmp_path: Path) -> None:
    out = run_script(tmp_path, COMPOSE_EXAMPLE + '''
from misen import run
report = run(plot_task, executor="in-process", workspace="memory")
print("ok", report.ok)
print(plot_task.result(workspace="memory"))
print(eval_task.is_cached(workspace="memory"), plot_task.done(workspace="memory"))
report = run(plot_task, executor="in-process", workspace="memory")
print("cached", report.counts())
''')
    assert "ok True" in out
    assert "plot of 0.256" in out
    assert "True True" in out
    assert "cached {'done': 1}" in out  # only the non-cacheable plot re-runs


def test_caching_and_versioning(tmp_path: Path) -> None:
    out = run_script(tmp_path, '''
from pathlib import Path
from misen import Task, meta, run, Serializer

calls = []

@meta(id="VERS000001", cache=True, versions={"dataset": {"mnist": 1}}, defaults={"augment": False},
      exclude={"num_workers"})
def prepare(dataset: str, augment: bool = False, num_workers: int = 4) -> str:
    calls.append((dataset, augment, num_workers))
    return f"{dataset}-{augment}"

class TextSerializer(Serializer):
    PLUGIN_NAME = "example.text"
    def save(self, value, directory, ctx):
        (directory / "value.txt").write_text(value)
        return {}
    def load(self, directory, meta, ctx):
        return (directory / "value.txt").read_text()

@meta(id="SER0000001", cache=True, serializer=TextSerializer)
def shout(text: str) -> str:
    return text.upper()

ws = "memory"
run([Task(prepare, dataset="cifar"), Task(prepare, dataset="mnist")], executor="in-process", workspace=ws)
n = len(calls)
# exclude: a different num_workers is the same task; defaults: augment=False equals the listed default
run([Task(prepare, dataset="cifar", num_workers=16), Task(prepare, dataset="cifar", augment=False)],
    executor="in-process", workspace=ws)
print("reran", len(calls) - n)
print(Task(prepare, dataset="cifar", augment=True).is_cached(workspace=ws))
t = Task(shout, text=Task(prepare, dataset="cifar").T)
run(t, executor="in-process", workspace=ws)
print(t.result(workspace=ws))
from misen import cache
from misen.runner import resolve_workspace
w = resolve_workspace(ws)
import json
print(json.loads((w.open_result(cache.result_hash(w, t)) / "manifest.json").read_text())["serializer"])
''')
    assert "reran 0" in out
    assert "False" in out
    assert "CIFAR-FALSE" in out
    assert "example.text" in out


def test_resources_example_declares_without_entering_identity(tmp_path: Path) -> None:
    out = run_script(tmp_path, '''
from misen import Task, meta

@meta(id="RES0000001", cache=True, resources={"gpus": 1, "memory": 32})
def train(lr: float, dim: int) -> int:
    return dim

t = Task(train, lr=0.1, dim=2)
r = t.resources
print(r.gpus, r.memory, r.cpus, r.nodes, r.time, r.gpu_runtime)
''')
    assert out.split() == ["1", "32", "1", "1", "None", "cuda"]


def test_result_computes_what_is_missing_as_the_sharing_section_promises(tmp_path: Path) -> None:
    out = run_script(tmp_path, COMPOSE_EXAMPLE + '''
from misen.errors import NotCachedError
try:
    eval_task.result(workspace="memory", compute=False)
except NotCachedError as exc:
    print("strict:", type(exc).__name__)
print(plot_task.result(workspace="memory"))       # computes train and evaluate first
print(eval_task.is_cached(workspace="memory"), eval_task.result(workspace="memory"))
''')
    assert "strict: NotCachedError" in out
    assert "plot of 0.256" in out
    assert "True 0.256" in out


def test_a_process_local_workspace_refuses_a_multi_process_executor(tmp_path: Path) -> None:
    out = run_script(tmp_path, COMPOSE_EXAMPLE + '''
from misen import run, Executor
from misen.errors import MisenError

class Spawning(Executor):
    PLUGIN_NAME = "spawning"

try:
    run(plot_task, executor=Spawning(), workspace="memory")
except MisenError as exc:
    print("refused:", exc)
''')
    assert "refused:" in out and "in-process" in out


def test_a_process_local_workspace_runs_in_process_when_no_executor_is_chosen(tmp_path: Path) -> None:
    out = run_script(tmp_path, COMPOSE_EXAMPLE + '''
import os
from misen import run
report = run(plot_task, workspace="memory")
print(report.ok, {o.where for o in report.outcomes.values()} == {f"in process {os.getpid()}"})
''')
    assert "True True" in out


def test_done_walks_shared_dependencies_once() -> None:
    from misen import MemoryWorkspace, Task, meta
    from misen.runner import run

    @meta(id="DONELEAF01", cache=True, code_changes="ignore")
    def leaf() -> int:
        return 1

    @meta(id="DONESTEP01", code_changes="ignore")
    def step(a: int, b: int = 0, side: str = "") -> int:
        return a + b

    ws = MemoryWorkspace()
    base = Task(leaf)
    top = base
    for _ in range(60):  # 2**60 paths: a walk that revisits shared dependencies never ends
        left, right = Task(step, a=top.T, side="l"), Task(step, a=top.T, side="r")
        top = Task(step, a=left.T, b=right.T)
    assert not top.done(ws)
    assert run(base, workspace=ws).ok
    assert top.done(ws)
