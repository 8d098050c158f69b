"""The README, followed literally: its quick start on a fresh copy of the repository, and its tour as a project.

Code blocks are marked with an HTML comment on the line before the fence:

- ``<!-- readme-test: quickstart -->``: shell commands run, line by line, in a copy of the repository
  (``git ls-files``) in a temporary directory, so the real checkout's ``.misen/`` is never touched;
- ``<!-- readme-test: file PATH -->``: the block is appended to ``PATH`` in the tour's temporary project;
- ``<!-- readme-test: replace-function PATH NAME -->``: at that point of the tour, the top-level function
  ``NAME`` in ``PATH`` (with its decorators) is replaced by the block, as a person editing the file would;
- ``<!-- readme-test: run -->``: the tour runs it in that project, in README order (Python blocks share one
  namespace, as in a notebook; shell blocks run line by line with the project's ``src/`` importable);
- ``<!-- readme-test: skip (REASON) -->``: not run, for the reason given.

Every Python and shell block must carry one of these, so no example can rot unnoticed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARK = re.compile(
    r"^<!-- readme-test: (quickstart|run|file (\S+)|replace-function (\S+) (\w+)|skip \((.+)\)) -->$"
)
FENCE = re.compile(r"^```(\w*)\s*$")


@attrs.frozen
class Block:
    kind: str  # quickstart, run, file, skip, or "" for an unmarked block
    lang: str
    code: str
    line: int
    path: str | None = None
    function: str | None = None


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block of the README with the directive on the line before it (if any)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        mark = MARK.match(lines[i - 1]) if i > 0 else None
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        kind = ""
        path = function = None
        if mark:
            kind = mark.group(1).split(" ", 1)[0]
            path = mark.group(2) or mark.group(3)
            function = mark.group(4)
        blocks.append(Block(kind, fence.group(1), "\n".join(body) + "\n", start + 1, path, function))
        i += 1
    return blocks


def shell_lines(code: str) -> list[str]:
    """The commands of a shell block: comments (`` # ...`` and whole-line) removed, blank lines dropped."""
    out = []
    for raw in code.splitlines():
        line = re.sub(r"\s+#\s.*$", "", raw).strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def test_every_code_block_is_marked() -> None:
    unmarked = [
        f"README.md:{b.line} ({b.lang})"
        for b in readme_blocks(README.read_text())
        if b.lang in ("python", "sh", "bash", "toml") and not b.kind
    ]
    assert not unmarked, f"code blocks without a readme-test directive: {unmarked}"


def test_block_parser_reads_directives() -> None:
    text = "x\n<!-- readme-test: file src/a.py -->\n```python\nA = 1\n```\n```sh\nls  # list\n```\n"
    blocks = readme_blocks(text)
    assert [(b.kind, b.lang, b.path, b.code) for b in blocks] == [
        ("file", "python", "src/a.py", "A = 1\n"),
        ("", "sh", None, "ls  # list\n"),
    ]
    assert shell_lines("a --x 1  # note\n# only a comment\n\nb '#not'\n") == ["a --x 1", "b '#not'"]


# --- the quick start, on a fresh copy ----------------------------------------------------------------------


def _copy_repository(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        rel = raw.decode()
        src = ROOT / rel
        if not src.is_file():  # deleted in the working tree but still in the index
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MISEN_", "VIRTUAL_ENV", "PYTEST_"))}
    env.pop("UV_PROJECT_ENVIRONMENT", None)
    env.pop("PYTHONPATH", None)
    return env


@pytest.mark.skipif(shutil.which("uv") is None and shutil.which("pip") is None, reason="neither uv nor pip")
@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_quick_start_on_a_fresh_copy(tmp_path: Path) -> None:
    commands = [
        line for b in readme_blocks(README.read_text()) if b.kind == "quickstart" for line in shell_lines(b.code)
    ]
    assert "uv run pytest" in commands, "the quick start must say how to run the tests"
    assert any("digits_study.experiments.sweep" in c for c in commands)
    root_project = (ROOT / "pyproject.toml").read_text()
    assert '"examples/*"' in root_project and '"digits-study"' in root_project, (
        "the root pyproject.toml must list examples/* as workspace members and digits-study in the dev group, "
        "or `uv run python -m digits_study...` cannot import the example"
    )
    copy = tmp_path / "misen"
    _copy_repository(copy)
    real_workspace = ROOT / ".misen"
    before = sorted(p.name for p in real_workspace.iterdir()) if real_workspace.exists() else None
    env = _clean_env()
    outputs: dict[str, str] = {}
    for command in commands:
        if command.startswith("pip install uv") and shutil.which("uv"):
            continue  # uv is already here; installing it again would only touch the real environment
        run = command
        if command == "uv run pytest":
            # The full suite is what .ci/run runs (and it contains this test); here the command must work:
            # the environment builds and every test is collected.
            run = "uv run pytest --collect-only -q -p no:cacheprovider"
        done = subprocess.run(
            ["bash", "-c", run], cwd=copy, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"README command failed: {command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        outputs[command] = done.stdout
    best = next(v for k, v in outputs.items() if k.endswith("result best"))
    assert "'accuracy': 0.99" in best, best
    plot = Path(next(v for k, v in outputs.items() if k.endswith("result plot")).strip().strip("'\""))
    assert plot.is_file() and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
    assert copy in plot.parents, f"the plot is not in the copy's workspace: {plot}"
    assert (copy / ".misen").is_dir()
    # The README promises that a second run of the sweep finds everything cached.
    sweep = next(c for c in commands if c.endswith("digits_study.experiments.sweep"))
    again = subprocess.run(["bash", "-c", sweep], cwd=copy, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "0 ran" in again.stderr + again.stdout, again.stderr
    after = sorted(p.name for p in real_workspace.iterdir()) if real_workspace.exists() else None
    assert before == after, "the README's commands changed the real checkout's .misen/"


# --- the tour, as a project --------------------------------------------------------------------------------

DRIVER = '''
import ast, json, os, subprocess, sys, traceback
steps = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}


def replace_function(path, name, code):
    lines = open(path).read().splitlines(keepends=True)
    for node in ast.parse("".join(lines)).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            lines[first:node.end_lineno] = [code]
            open(path, "w").write("".join(lines))
            return
    sys.exit(f"README.md: no function {name} in {path}")


for step in steps:
    if step["lang"] == "replace":
        replace_function(step["path"], step["function"], step["code"])
    elif step["lang"] == "python":
        try:
            exec(compile(step["code"], f"README.md:{step['line']}", "exec"), namespace)
        except BaseException:
            traceback.print_exc()
            print(f"README block at line {step['line']} failed", file=sys.stderr)
            sys.exit(1)
    else:
        for command in step["commands"]:
            print(f"$ {command}", flush=True)
            done = subprocess.run(["bash", "-c", command])
            if done.returncode != 0:
                print(f"README command failed (line {step['line']}): {command}", file=sys.stderr)
                sys.exit(1)
'''


def test_tour_runs_as_written(tmp_path: Path) -> None:
    project = tmp_path / "my-project"
    (project / "src" / "my_project").mkdir(parents=True)
    # What `uv init my-project --package` creates (the README's first step).
    (project / "pyproject.toml").write_text('[project]\nname = "my-project"\nversion = "0.1.0"\n')
    (project / "src" / "my_project" / "__init__.py").write_text("")
    steps = []
    for block in readme_blocks(README.read_text()):
        if block.kind == "file":
            assert block.path
            target = project / block.path
            target.parent.mkdir(parents=True, exist_ok=True)
            previous = target.read_text() if target.exists() else ""
            target.write_text(previous + ("\n\n" if previous else "") + block.code)
        elif block.kind == "replace-function":
            steps.append({"lang": "replace", "path": block.path, "function": block.function, "code": block.code,
                          "line": block.line})
        elif block.kind == "run":
            if block.lang == "python":
                steps.append({"lang": "python", "code": block.code, "line": block.line})
            else:
                steps.append({"lang": "sh", "commands": shell_lines(block.code), "line": block.line})
    assert (project / ".misen.toml").exists(), "the README's configuration block is the tour's .misen.toml"
    (tmp_path / "steps.json").write_text(json.dumps(steps))
    (tmp_path / "driver.py").write_text(textwrap.dedent(DRIVER))
    env = _clean_env()
    env["PYTHONPATH"] = str(project / "src")  # what `uv sync` does for an installed project
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # python, misen
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # no user configuration leaks in
    done = subprocess.run(
        [sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "steps.json")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    out = done.stdout
    assert "loss: 0.1275" in out  # print(plot_task.result())
    assert "{'loss': 25.55}" in out  # the experiment's metrics
    assert out.count("Completed 3 of 3 tasks") == 2  # before the edit, and after `accept`
    assert "◐ metrics" in out  # the edit made the result stale
    assert "changed: my_project.tasks.evaluate" in out  # `why` says what changed
    assert "2 reproduced, 0 differ" in out  # `verify` after `accept`: the edit changed nothing
    assert "lr=0.01 dim=512: loss 2.555" in out  # the sweep, read back through the installed package
    assert "\ndata\n" in out  # a task saw DATA_DIR from .env
    assert (project / ".misen").is_dir()
    assert oct((project / ".env.local").stat().st_mode & 0o777) == oct(0o600)
