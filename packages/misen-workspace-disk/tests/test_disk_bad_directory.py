"""A workspace ``directory`` that cannot be one is rejected when the workspace is configured, in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from misen.errors import ConfigError
from misen_workspace_disk import DiskWorkspace


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_directory_is_rejected(value: str) -> None:
    with pytest.raises(ConfigError, match="directory is empty"):
        DiskWorkspace(directory=value)


def test_a_directory_that_is_a_file_is_rejected(tmp_path: Path) -> None:
    afile = tmp_path / "notes.txt"
    afile.write_text("not a workspace")
    with pytest.raises(ConfigError, match="is a file, not a directory") as info:
        DiskWorkspace(directory=str(afile))
    assert str(afile) in str(info.value)
    assert afile.read_text() == "not a workspace"


@pytest.mark.parametrize(("value", "message"), [('""', "directory is empty"), ('"pyproject.toml"', "is a file")])
def test_through_misen_toml_in_one_line(tmp_path: Path, value: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "badws"\nversion = "0"\n')
    (tmp_path / ".misen.toml").write_text(f'[workspace]\ntype = "disk"\ndirectory = {value}\n')
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "misen"), "workspace", "info"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert message in out and "Traceback" not in out and len(out.strip().splitlines()) == 1, out
    assert sorted(p.name for p in tmp_path.iterdir()) == [".misen.toml", "pyproject.toml"]  # nothing written
