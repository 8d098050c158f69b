"""On the real test cluster: payloads, job scripts, logs and snapshots never expose ``.env``/``.env.local`` values
to another user (0600 files in 0700 folders)."""

from __future__ import annotations

import importlib
import io
import os
import stat
import sys
import uuid
from pathlib import Path

import pytest
from misen import cache
from misen.reporting import PlainReporter
from misen.runner import run
from misen.tasks import Task
from misen_executor_slurm.executor import SlurmExecutor
from misen_executor_slurm.testing import SlurmTestCluster

SHARED_SECRET = "slurm-dotenv-4d2b8e61"
LOCAL_SECRET = "slurm-dotenvlocal-9a7c3f05"

TASKS = """
import os
from misen import meta


@meta(id="SLURM-SECRET-LEN", cache=True)
def env_length(name: str) -> int:
    return len(os.environ.get(name, ""))
"""


def _exposed(roots: list[Path], secrets: list[str]) -> tuple[list[str], int]:
    """Files holding a secret that another user could read, and how many files hold one at all."""
    exposed: list[str] = []
    holding = 0
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for name in files:
                path = Path(dirpath, name)
                data = path.read_bytes()
                if not any(s.encode() in data for s in secrets):
                    continue
                holding += 1
                mode = stat.S_IMODE(path.stat().st_mode)
                parent = stat.S_IMODE(path.parent.stat().st_mode)
                if mode & 0o077 or parent & 0o077:
                    exposed.append(f"{path} (file {mode:o}, folder {parent:o})")
    return exposed, holding


def test_payloads_and_snapshots_keep_secrets_private(
    slurm_cluster: SlurmTestCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "proj"
    module = f"slurmsecret_{uuid.uuid4().hex[:8]}"
    (root / "src" / module).mkdir(parents=True)
    (root / "src" / module / "__init__.py").write_text(TASKS)
    (root / "pyproject.toml").write_text(f'[project]\nname = "{module}"\nversion = "0"\n')
    (root / ".env").write_text(f"SLURM_SHARED_SECRET={SHARED_SECRET}\n")
    (root / ".env.local").write_text(f"SLURM_LOCAL_SECRET={LOCAL_SECRET}\n")
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root / "src"))
    tasks_module = importlib.import_module(module)
    from misen_workspace_disk.workspace import DiskWorkspace

    ws = DiskWorkspace(directory=str(root / ".misen"))
    tasks = [Task(tasks_module.env_length, name=n) for n in ("SLURM_SHARED_SECRET", "SLURM_LOCAL_SECRET")]
    executor = SlurmExecutor(poll_interval=0.3, max_poll_interval=1.0, default_flags=["--mem=512M"])
    report = run(tasks, executor=executor, workspace=ws, reporter=PlainReporter(io.StringIO()))
    assert report.ok, report.outcomes
    assert [cache.load(ws, t) for t in tasks] == [len(SHARED_SECRET), len(LOCAL_SECRET)]
    runs = root / ".misen" / "slurm" / "runs"
    assert list(runs.glob("*/units/*.payload")), "no payload written: the scan would prove nothing"
    exposed, holding = _exposed([root / ".misen"], [SHARED_SECRET, LOCAL_SECRET])
    assert exposed == []
    assert holding >= 2  # the payloads (and the snapshot's env files) hold them, privately
    for run_dir in runs.iterdir():
        assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    del sys.modules[module]
