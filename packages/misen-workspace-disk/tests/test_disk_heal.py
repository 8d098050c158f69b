"""Damage heals through the normal commands: ``list`` never shows a result with missing files as done, ``result``
names the damage, and ``run`` drops a damaged result, says so in one line, and computes it again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

EXPERIMENT = textwrap.dedent(
    '''
    import os
    from misen import Experiment, Task, meta

    @meta(id="HEALNUMS01", cache=True)
    def numbers(n: int) -> list:
        with open(os.path.join(os.environ["HEAL_MARKS"], f"numbers.{os.getpid()}.{os.urandom(4).hex()}"), "w"):
            pass
        return list(range(n))

    @meta(id="HEALTOTAL1", cache=True)
    def total(xs: list) -> int:
        return sum(xs)

    class Heal(Experiment):
        n: int = 20000

        def tasks(self):
            nums = Task(numbers, n=self.n)
            return {"numbers": nums, "total": Task(total, xs=nums.T)}

    if __name__ == "__main__":
        Heal.cli()
    '''
)


@pytest.fixture
def heal(tmp_path: Path):
    root = tmp_path / "proj"
    (root / "src" / "healproj").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "healproj"\nversion = "0"\n')
    (root / ".misen.toml").write_text('[executor]\ntype = "in-process"\n[workspace]\ntype = "disk"\n')
    (root / "src" / "healproj" / "__init__.py").write_text("")
    (root / "src" / "healproj" / "exp.py").write_text(EXPERIMENT)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "HEAL_MARKS": str(marks)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "healproj.exp", *args], cwd=root, env=env, capture_output=True, text=True, timeout=120
        )

    return root, marks, cli


def _numbers_result(root: Path) -> Path:
    """The result folder of the `numbers` task (the one holding a list of 20,000 numbers)."""
    for manifest in (root / ".misen" / "results").glob("*/*/manifest.json"):
        data = json.loads(manifest.read_text())
        if any(info["size"] > 50_000 for info in data["files"].values()):
            return manifest.parent
    raise AssertionError("no stored result of numbers")


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "manifest"])
def test_damage_is_found_named_and_recomputed_by_the_normal_commands(heal, damage: str) -> None:
    root, marks, cli = heal
    first = cli("run")
    assert first.returncode == 0, first.stderr
    folder = _numbers_result(root)
    data = next(p for p in folder.iterdir() if p.name not in ("manifest.json", ".verified"))
    if damage == "flip":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        data.write_bytes(bytes(raw))
    elif damage == "truncate":
        data.write_bytes(data.read_bytes()[:100])
    elif damage == "delete":
        data.unlink()
    else:
        (folder / "manifest.json").write_text('{"files": {')
    listing = cli("list")
    assert listing.returncode == 0, listing.stderr
    line = next(ln for ln in listing.stdout.splitlines() if "numbers" in ln)
    if damage != "flip":  # a flipped byte keeps every file's size: only its checksum finds it
        assert "✓" not in line, listing.stdout
    shown = cli("result", "numbers")
    assert shown.returncode != 0
    assert "damaged" in shown.stderr and "run it first" not in shown.stderr, shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1, shown.stderr
    again = cli("run")
    assert again.returncode == 0, again.stderr
    assert len(list(marks.iterdir())) == 2  # computed again, once
    total = cli("result", "total")
    assert total.returncode == 0 and str(sum(range(20000))) in total.stdout
    assert cli("result", "numbers").returncode == 0


def test_a_run_names_the_damage_in_one_line(heal) -> None:
    root, marks, cli = heal
    assert cli("run").returncode == 0
    folder = _numbers_result(root)
    data = next(p for p in folder.iterdir() if p.name not in ("manifest.json", ".verified"))
    data.write_bytes(data.read_bytes()[:-10])
    again = cli("run")
    assert again.returncode == 0, again.stderr
    lines = [ln for ln in again.stderr.splitlines() if "was damaged" in ln]
    assert len(lines) == 1 and "Task(numbers" in lines[0] and "recomputing" in lines[0], again.stderr
    assert len(list(marks.iterdir())) == 2
