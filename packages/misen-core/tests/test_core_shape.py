"""The second shape of misen-core: tasks as immutable values with one walker, the threads executor, typed
settings, one event stream, and identities that hold across ``python -m`` and edits that add defaults."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import attrs
import pytest
from misen import Experiment, MemoryWorkspace, Task, cache, hookimpl, meta
from misen.errors import ConfigError, MisenError, UnhashableArgumentError
from misen.executor import UnitOutcome
from misen.reporting import PlainReporter
from misen.runner import resolve_executor, run
from misen.tasklog import task_logs
from misen.testing.fixtures import start_session


@meta(id="SHAPEMAKE1", cache=True)
def make(n: int) -> int:
    return n * 10


@meta(id="SHAPEUSE01", cache=True)
def use(cfg: Any) -> int:
    return cfg.upstream + cfg.k


@dataclasses.dataclass(frozen=True)
class Cfg:
    upstream: Any
    k: int


@attrs.frozen
class AttrsCfg:
    upstream: Any
    k: int


@dataclasses.dataclass
class MutableCfg:
    k: int


@meta(id="SHAPEMUT01", cache=True)
def use_mutable(cfg: MutableCfg) -> int:
    return cfg.k


@meta(id="SHAPELIST1", cache=True)
def total(xs: list[int]) -> int:
    xs.append(1000)  # a task may change what it was given without touching the task
    return sum(xs)


def test_a_task_inside_a_dataclass_is_a_dependency_and_gets_its_result() -> None:
    ws = MemoryWorkspace()
    for holder in (Cfg, AttrsCfg):
        t = Task(use, cfg=holder(upstream=Task(make, n=3), k=1))
        assert [d.name for d in t.dependencies] == ["make"]
        assert run(t, executor="in-process", workspace=ws, reporter=PlainReporter(verbose=False)).ok
        assert t.result(ws) == 31
        clone = pickle.loads(pickle.dumps(t))
        assert clone == t and clone.dependencies == t.dependencies


def test_a_task_hidden_inside_another_kind_of_value_is_refused() -> None:
    from collections import OrderedDict

    with pytest.raises(UnhashableArgumentError, match="does not look into"):
        Task(use, cfg=OrderedDict(upstream=Task(make, n=1)))


def test_arguments_are_read_only_and_copied() -> None:
    xs = [1, 2]
    t = Task(total, xs=xs)
    with pytest.raises(TypeError):
        t.arguments["xs"] = [5]  # type: ignore[index]
    with pytest.raises(AttributeError):
        t.arguments["xs"].append(3)
    with pytest.raises(AttributeError):
        t.fn = make  # type: ignore[misc]
    with pytest.raises(AttributeError):
        t.extra = 1  # type: ignore[attr-defined]
    xs.append(3)
    assert t.arguments["xs"] == [1, 2] and t.hash == Task(total, xs=[1, 2]).hash
    ws = MemoryWorkspace()
    assert t.result(ws) == 1003  # the function got its own fresh list
    assert t.arguments["xs"] == [1, 2]


def test_a_mutable_value_changed_after_hashing_is_refused_before_it_runs() -> None:
    cfg = MutableCfg(k=1)
    t = Task(use_mutable, cfg=cfg)
    t.arguments["cfg"].k = 2  # the task's own copy, changed behind its back
    report = run(t, executor="in-process", workspace=MemoryWorkspace(), reporter=PlainReporter(verbose=False))
    assert not report.ok
    assert "changed after the task was made" in (report.failed[0][1].error or "")
    cfg.k = 5  # the caller's object is not the task's
    assert Task(use_mutable, cfg=MutableCfg(k=1)).hash == Task(use_mutable, cfg=MutableCfg(k=1)).hash


def test_self_reference_and_deep_nesting_end_in_one_line() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(UnhashableArgumentError) as info:
        Task(total, xs=loop)
    assert "argument 'xs' of task total contains itself" in str(info.value)
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(UnhashableArgumentError) as info:
        Task(total, xs=deep)
    assert "nested more than 100 levels deep" in str(info.value)
    assert "\n" not in str(info.value)


# --- the threads executor -------------------------------------------------------------------------------------


@meta(id="SHAPESLEEP", cache=True)
def chatty(i: int) -> int:
    import time

    print(f"task {i} says hello")
    time.sleep(0.05)
    print(f"task {i} says bye", file=sys.stderr)
    return i * i


@meta(id="SHAPESUM01", cache=True)
def add_all(values: list[int]) -> int:
    print("summing")
    return sum(values)


def test_threads_executor_keeps_logs_apart_display_intact_and_memory_results(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = MemoryWorkspace()
    parts = [Task(chatty, i=i) for i in range(24)]
    top = Task(add_all, values=[p.T for p in parts])
    report = run(top, executor=resolve_executor("threads"), workspace=ws, reporter=PlainReporter())
    assert report.ok and report.counts() == {"done": 25}
    print("the script prints again")
    out, err = capsys.readouterr()
    assert "the script prints again" in out
    assert "says hello" not in out and "says bye" not in err  # task output went to the task logs
    assert err.count("✓ ") == 25 and "25 ran" in err  # the display is whole, on the terminal
    for p in parts:
        (log,) = task_logs(ws, p)  # a quick task that succeeded: kept in its record
        text = log.read()
        i = p.arguments["i"]
        assert f"task {i} says hello" in text and f"task {i} says bye" in text
        assert "says" not in text.replace(f"task {i} says", "")  # nobody else's lines
        assert "✓" not in text
    assert top.result(ws) == sum(i * i for i in range(24))
    again = run(top, executor="threads", workspace=ws, reporter=PlainReporter(verbose=False))
    assert again.ok and again.already_cached == 25


@meta(id="SHAPEFAIL1", cache=True)
def fails(i: int) -> int:
    raise ValueError(f"bad {i}")


def test_threads_executor_skips_dependents_of_a_failure() -> None:
    ws = MemoryWorkspace()
    bad = Task(fails, i=1)
    good = Task(make, n=2)
    top = Task(add_all, values=[bad.T, good.T])
    report = run(top, executor="threads", workspace=ws, reporter=PlainReporter(verbose=False))
    statuses = {o.status for o in report.outcomes.values()}
    assert statuses == {"failed", "done", "skipped"}
    assert cache.is_cached(ws, good) and not cache.is_cached(ws, top)


def test_threads_run_from_another_thread_uses_the_same_session() -> None:
    ws = MemoryWorkspace()
    out: dict[str, Any] = {}
    t = Task(make, n=7)

    def body() -> None:
        out["ok"] = run(t, executor="threads", workspace=ws, reporter=PlainReporter(verbose=False)).ok

    th = threading.Thread(target=body)
    th.start()
    th.join()
    assert out["ok"] and t.result(ws) == 70


# --- one event stream -----------------------------------------------------------------------------------------


class _Observer:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    @hookimpl
    def misen_run_started(self, plan: Any, events: Any) -> None:
        self.events.append(("run", str(len(plan.units))))
        self.cancel = events.cancel

    @hookimpl
    def misen_unit_finished(self, unit: Any, outcome: UnitOutcome) -> None:
        self.events.append((unit.root.name, outcome.status))
        if len(self.events) == 2:
            self.cancel()  # stop the run after its first unit

    @hookimpl
    def misen_run_finished(self, report: Any) -> None:
        self.events.append(("end", str(report.counts())))


def test_observers_see_what_the_display_sees_and_can_cancel(capsys: pytest.CaptureFixture[str]) -> None:
    observer = _Observer()
    start_session(observer)
    tasks = [Task(make, n=i) for i in range(5)]
    report = run(tasks, executor="in-process", workspace=MemoryWorkspace(), reporter=PlainReporter())
    assert observer.events[0] == ("run", "5")
    assert observer.events[1] == ("make", "done")
    assert report.counts() == {"done": 1, "cancelled": 4}
    assert observer.events[-1] == ("end", str(report.counts()))
    assert capsys.readouterr().err.count("✗") == 4  # the display reported the same cancellations


# --- settings -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2.5", "expected an integer, got a number (2.5)"), ("true", "expected an integer, got a boolean"),
     ('"3"', "expected an integer, got a string"), ("0", "must be at least 1")],
)
def test_settings_refuse_wrong_types_naming_file_section_and_key(
    isolated_project: Path, value: str, expected: str
) -> None:
    (isolated_project / ".misen.toml").write_text(f'[executor]\ntype = "threads"\nmax_workers = {value}\n')
    with pytest.raises(ConfigError) as info:
        resolve_executor()
    msg = str(info.value)
    assert str(isolated_project / ".misen.toml") in msg and "[executor]" in msg and "max_workers" in msg
    assert expected in msg


def test_settings_refuse_wrong_types_in_python() -> None:
    from misen._builtin.threads import ThreadsExecutor

    with pytest.raises(ConfigError, match="expected an integer"):
        ThreadsExecutor(max_workers=0.9)


def test_a_section_without_type_applies_to_the_backend_chosen_elsewhere(isolated_project: Path) -> None:
    (isolated_project / ".misen.toml").write_text("[executor]\nmax_workers = 3\n")
    assert resolve_executor("threads").settings.max_workers == 3  # as --executor-type threads would
    (isolated_project / ".misen.toml").write_text("[executor]\nbogus_key = 1\n")
    with pytest.raises(ConfigError, match="unknown key 'bogus_key'"):
        resolve_executor("threads")
    (isolated_project / ".misen.toml").write_text('[executor]\ntype = "in-process"\ncapture = false\n')
    assert resolve_executor("threads").settings.max_workers == 8  # written for another backend: not applied


def test_config_that_is_not_utf8_is_one_line(isolated_project: Path) -> None:
    (isolated_project / ".misen.toml").write_bytes(b'[executor]\ntype = "\xff"\n')
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        resolve_executor()


# --- identities across processes and edits --------------------------------------------------------------------


def _project(root: Path, body: str) -> None:
    pkg = root / "src" / "shapeproj"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "exp.py").write_text(textwrap.dedent(body))
    (root / ".misen.toml").write_text('[executor]\ntype = "in-process"\n[workspace]\ntype = "disk"\n')


def _python(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_an_enum_of_an_experiment_module_identifies_the_same_run_as_main_or_imported(isolated_project: Path) -> None:
    pytest.importorskip("misen_workspace_disk")
    _project(
        isolated_project,
        '''
        import enum
        from misen import Experiment, Task, meta

        class Mode(enum.Enum):
            FAST = "fast"
            SLOW = "slow"

        @meta(id="SHAPEENUM1", cache=True)
        def pick(mode: Mode) -> str:
            return mode.value

        class Exp(Experiment):
            mode: Mode = Mode.FAST

            def tasks(self):
                return {"out": Task(pick, mode=self.mode)}

        if __name__ == "__main__":
            Exp.cli()
        ''',
    )
    first = _python(isolated_project, "-m", "shapeproj.exp", "run")
    assert first.returncode == 0, first.stderr
    probe = _python(isolated_project, "-c", "from shapeproj.exp import Exp; print(Exp()['out'].is_cached())")
    assert probe.stdout.strip() == "True", probe.stderr
    again = _python(isolated_project, "-m", "shapeproj.exp", "run")
    assert "0 ran" in again.stderr, again.stderr


def test_defaults_keep_results_of_calls_at_the_default_when_the_parameter_is_added(isolated_project: Path) -> None:
    pytest.importorskip("misen_workspace_disk")
    _project(
        isolated_project,
        '''
        from misen import Task, meta

        @meta(id="SHAPEFIT01", cache=True)
        def fit(a: int) -> int:
            return a * 2
        ''',
    )
    script = "from misen import Task; from shapeproj.exp import fit; print(Task(fit, a=1).result())"
    assert _python(isolated_project, "-c", script).stdout.strip() == "2"
    _project(
        isolated_project,
        '''
        from misen import Task, meta

        @meta(id="SHAPEFIT01", cache=True, defaults={"b": 0})
        def fit(a: int, b: int = 0) -> int:
            return a * 2 + b + 1000  # the new code would give another value
        ''',
    )
    probe = _python(
        isolated_project,
        "-c",
        "from misen import Task; from misen.runner import run; from shapeproj.exp import fit\n"
        "t = Task(fit, a=1)\n"
        "report = run(t)\n"
        "print('RAN', report.counts().get('done', 0), 'VALUE', t.result())\n"
        "from misen import cache; from misen.runner import resolve_workspace\n"
        "print('PROV', cache.provenance(resolve_workspace(), t).get('carried_over'))\n"
        "print('OTHER', Task(fit, a=1, b=2).result())\n",
    )
    assert probe.returncode == 0, probe.stderr
    assert "RAN 0 VALUE 2" in probe.stdout, probe.stdout + probe.stderr
    assert "PROV {'defaults': ['b'], 'from_task':" in probe.stdout
    assert "OTHER 1004" in probe.stdout


def test_an_edit_of_the_function_body_alone_is_not_carried_over(isolated_project: Path) -> None:
    pytest.importorskip("misen_workspace_disk")
    _project(
        isolated_project,
        '''
        from misen import meta

        @meta(id="SHAPEFIT02", cache=True, defaults={"b": 0})
        def fit(a: int, b: int = 0) -> int:
            return a * 2 + b
        ''',
    )
    script = "from misen import Task; from shapeproj.exp import fit; print(Task(fit, a=1).result())"
    assert _python(isolated_project, "-c", script).stdout.strip() == "2"
    exp = isolated_project / "src/shapeproj/exp.py"
    exp.write_text(exp.read_text().replace("a * 2 + b", "a * 3 + b"))
    assert _python(isolated_project, "-c", script).stdout.strip() == "3"


def test_experiment_run_goes_through_the_session_in_a_notebook_style() -> None:
    class Small(Experiment):
        n: int = 4

        def tasks(self) -> dict[str, Task[Any]]:
            return {"x": Task(make, n=self.n)}

    ws = MemoryWorkspace()
    report = Small().run(workspace=ws, reporter=PlainReporter(verbose=False))
    assert report.ok and Small()["x"].result(ws) == 40
    with pytest.raises(MisenError, match="nope"):
        Small()["nope"]


# --- the interrupt contract, on the executors that run units in this process ----------------------------------


@pytest.mark.parametrize("executor", ["threads", "in-process"])
def test_ctrl_c_cancels_the_rest_and_exits_130(isolated_project: Path, executor: str) -> None:
    import os
    import signal
    import time

    _project(
        isolated_project,
        '''
        import time
        from misen import Experiment, Task, meta

        @meta(id="SHAPESLOW1", cache=True)
        def slow(i: int) -> int:
            print("started", i, flush=True)
            time.sleep(1.5)
            return i

        class Slow(Experiment):
            def tasks(self):
                return {f"s{i}": Task(slow, i=i) for i in range(6)}

        if __name__ == "__main__":
            Slow.cli()
        ''',
    )
    (isolated_project / ".misen.toml").write_text(
        f'[executor]\ntype = "{executor}"\n' + ("max_workers = 2\n" if executor == "threads" else "")
        + '[workspace]\ntype = "memory"\n'
    )
    env = {**os.environ, "PYTHONPATH": str(isolated_project / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "shapeproj.exp", "run"],
        cwd=isolated_project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3.0)  # the first units are running
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert "cancelled" in err, err


def test_of_two_racing_runs_exactly_the_earlier_one_waits_even_at_the_same_instant() -> None:
    from misen.worker import yields_to
    from misen.workspace import LockHolder

    def holder(run: str, started: float) -> LockHolder:
        return LockHolder(host="h", pid=1, since=started, run=run, run_started=started)

    assert yields_to(holder("b", 2.0), 1.0, "a")  # the holder's run started later: wait for it
    assert not yields_to(holder("a", 1.0), 2.0, "b")  # it started earlier: do not wait
    # the same instant (a coarse clock): ordered by run id, so exactly one of the two waits
    assert yields_to(holder("b", 1.0), 1.0, "a") != yields_to(holder("a", 1.0), 1.0, "b")
    assert not yields_to(holder("a", 1.0), 1.0, "a")  # its own run
    assert not yields_to(holder("b", 0.0), 1.0, "a")  # a holder whose start is unknown
    assert not yields_to(None, 1.0, "a")
