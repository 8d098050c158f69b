"""plugins.md's complete executor plugin, built and installed from the page's own text, runs a task end to end."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def plugin_files() -> dict[str, str]:
    text = (ROOT / "plugins.md").read_text()
    found = re.findall(r"<!-- plugin-file: (\S+) -->\n```\w*\n(.*?)```", text, flags=re.S)
    return {name: body for name, body in found}


def test_page_declares_the_three_files() -> None:
    assert set(plugin_files()) == {
        "pyproject.toml",
        "src/misen_executor_serial/hooks.py",
        "src/misen_executor_serial/executor.py",
    }


def test_every_hook_is_in_the_page() -> None:
    from misen import hookspecs

    text = (ROOT / "plugins.md").read_text()
    hooks = [n for n in dir(hookspecs) if n.startswith("misen_")]
    assert hooks
    for name in hooks:
        assert f"`{name}(" in text, f"plugins.md does not explain {name}"


@pytest.mark.skipif(shutil.which("uv") is None, reason="building the plugin uses uv")
def test_third_party_executor_plugin_end_to_end(tmp_path: Path) -> None:
    src = tmp_path / "misen-executor-serial"
    for name, body in plugin_files().items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    site = tmp_path / "site"
    # Build a wheel from the page's files and install it into a separate directory (no dependencies: misen-core is
    # already in this environment).
    subprocess.run(
        ["uv", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(src)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert list(site.glob("misen_executor_serial-*.dist-info"))
    project = tmp_path / "project"
    (project / "src" / "demo").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "0"\n')
    (project / ".misen.toml").write_text('[executor]\ntype = "serial"\n[workspace]\ntype = "disk"\n')
    (project / "src" / "demo" / "__init__.py").write_text("")
    (project / "src" / "demo" / "flow.py").write_text(textwrap.dedent("""
        import os
        from misen import Task, meta

        @meta(id="SERIALDEMO", cache=True)
        def square(x: int) -> tuple:
            return x * x, os.getpid()

        @meta(id="SERIALSUM1", cache=True)
        def total(parts: list) -> int:
            return sum(p[0] for p in parts)
    """))
    script = textwrap.dedent("""
        import os
        from misen import Task, run
        from misen.session import registry
        from demo.flow import square, total
        print("registered", registry().get("executor", "serial").__module__)
        parts = [Task(square, x=i) for i in range(3)]
        t = Task(total, parts=[p.T for p in parts])
        report = run(t)
        print("ok", report.ok, t.result())
        print("pids", len({p.result()[1] for p in parts} | {os.getpid()}))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(project / "src")])}
    env.pop("MISEN_CONFIG", None)
    proc = subprocess.run([sys.executable, "-c", script], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "registered misen_executor_serial.executor" in proc.stdout
    assert "ok True 5" in proc.stdout
    assert "pids 4" in proc.stdout  # three worker subprocesses plus this one


def pool_files() -> dict[str, str]:
    text = (ROOT / "plugins.md").read_text()
    found = dict(re.findall(r"<!-- plugin-file\(pool\): (\S+) -->\n```\w*\n(.*?)```", text, flags=re.S))
    # The page says the pool plugin's pyproject.toml is the serial one with `serial` replaced by `pool`.
    found["pyproject.toml"] = plugin_files()["pyproject.toml"].replace("serial", "pool")
    return found


@pytest.mark.skipif(shutil.which("uv") is None, reason="building the plugin uses uv")
def test_third_party_thread_executor_plugin_end_to_end(tmp_path: Path) -> None:
    """The page's second shape: units on threads of this process, with the memory workspace and separate logs."""
    src = tmp_path / "misen-executor-pool"
    files = pool_files()
    assert set(files) == {"pyproject.toml", "src/misen_executor_pool/hooks.py", "src/misen_executor_pool/executor.py"}
    for name, body in files.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    site = tmp_path / "site"
    subprocess.run(
        ["uv", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(src)],
        check=True,
        capture_output=True,
        text=True,
    )
    project = tmp_path / "project"
    (project / "src" / "demo").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "0"\n')
    (project / ".misen.toml").write_text('[executor]\ntype = "pool"\n[workspace]\ntype = "memory"\n')
    (project / "src" / "demo" / "__init__.py").write_text("")
    (project / "src" / "demo" / "flow.py").write_text(textwrap.dedent("""
        import time
        from misen import meta

        @meta(id="POOLDEMO01", cache=True)
        def square(x: int) -> int:
            print(f"squaring {x}")
            time.sleep(0.05)
            return x * x

        @meta(id="POOLSUM001", cache=True)
        def total(parts: list) -> int:
            return sum(parts)
    """))
    script = textwrap.dedent("""
        from misen import Task, run
        from misen.runner import resolve_workspace
        from misen.tasklog import task_logs
        from demo.flow import square, total
        parts = [Task(square, x=i) for i in range(8)]
        t = Task(total, parts=[p.T for p in parts])
        report = run(t)
        print("ok", report.ok, report.counts(), t.result())
        ws = resolve_workspace()
        logs = [task_logs(ws, p)[0].read() for p in parts]
        print("apart", all(f"squaring {i}" in log and log.count("squaring") == 1 for i, log in enumerate(logs)))
        print("again", run(t).already_cached)
        print("after the run")
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(project / "src")])}
    env.pop("MISEN_CONFIG", None)
    proc = subprocess.run([sys.executable, "-c", script], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "ok True {'done': 9} 140" in proc.stdout
    assert "apart True" in proc.stdout and "again 9" in proc.stdout and "after the run" in proc.stdout
    assert "squaring" not in proc.stdout + proc.stderr  # task output stayed in the task logs
    assert proc.stderr.count("✓") == 9  # the run's display is intact
