"""The README's "Installing misen from a clone", followed literally: editable into a new uv project, and from
wheels built with ``uv build --all-packages`` into a uv project and into a pip virtualenv.

The clone is a copy of this repository's files (as the quick start test makes it); ``~/src/misen`` in the
README's commands stands for it. Installing needs the package index for misen's own dependencies.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import pytest
from test_readme import README, ROOT, _clean_env, _copy_repository, readme_blocks, shell_lines

HEADING = "### Installing misen from a clone"
CLONE = "~/src/misen"

CHECK = (
    "import misen, misen_serializers_sklearn\n"
    "from misen import Task, meta\n"
    "@meta(id='CLONE4TEST', cache=True)\n"
    "def add(a: int, b: int) -> int:\n"
    "    return a + b\n"
    "misen.run([Task(add, a=1, b=2)], executor='in-process')\n"
    "print(Task(add, a=1, b=2).result(), misen.__file__)\n"
)


def section_commands() -> list[str]:
    """The shell commands of the README's section on installing from a clone (the clone itself left out)."""
    text = README.read_text()
    start = text.index(HEADING)
    end = text.find("\n## ", start)
    blocks = readme_blocks(text[start : end if end != -1 else len(text)])
    commands = [line for b in blocks if b.lang == "sh" for line in shell_lines(b.code)]
    return [c for c in commands if not c.startswith("git clone")]


def _run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _new_uv_project(where: Path, env: dict[str, str]) -> Path:
    _run(f"uv init -q {where.name} --package --python {sys.executable}", where.parent, env)
    return where


def test_the_readme_section_has_the_three_ways() -> None:
    commands = section_commands()
    assert any(c.startswith("uv add --editable ~/src/misen/packages/misen") for c in commands)
    assert any("uv build --all-packages" in c for c in commands)
    assert any(c.startswith("uv add --find-links") for c in commands)
    assert any(c.startswith("pip install --find-links") for c in commands)


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not installed")
@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_installing_from_a_clone_as_the_readme_says(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    _copy_repository(clone)
    env = _clean_env()
    commands = [c.replace(CLONE, str(clone)) for c in section_commands()]
    editable = [c for c in commands if "--editable" in c]
    build = [c for c in commands if "uv build" in c]
    uv_wheels = [c for c in commands if c.startswith("uv add --find-links")]
    pip_wheels = [c for c in commands if c.startswith("pip install")]

    # Editable, into a new uv project: the clone's code is what runs.
    project = _new_uv_project(tmp_path / "editable-project", env)
    for command in editable:
        _run(command, project, env)
    out = _run(f"uv run python -c {shlex.quote(CHECK)}", project, env).stdout.split()
    assert out[0] == "3" and out[1].startswith(str(clone / "packages" / "misen-core")), out

    # Wheels: built once in the clone, then installed into a uv project and into a pip virtualenv.
    for command in build:
        _run(command, project, env)
    assert (clone / "dist" / "misen_core-0.1.0-py3-none-any.whl").is_file()
    wheels_project = _new_uv_project(tmp_path / "wheels-project", env)
    for command in uv_wheels:
        _run(command, wheels_project, env)
    out = _run(f"uv run python -c {shlex.quote(CHECK)}", wheels_project, env).stdout.split()
    assert out[0] == "3" and "site-packages" in out[1], out

    venv = tmp_path / "venv"
    _run(f"{sys.executable} -m venv {venv}", tmp_path, env)
    pip_env = {**env, "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}", "VIRTUAL_ENV": str(venv)}
    for command in pip_wheels:
        _run(command, tmp_path, pip_env)
    out = _run(f"python -c {shlex.quote(CHECK)}", tmp_path, pip_env).stdout.split()
    assert out[0] == "3" and str(venv) in out[1], out
