"""The executor contract every misen executor passes, run against the local executor and the disk workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from misen.testing.contracts import ExecutorContract
from misen_executor_local import LocalExecutor


class TestLocalExecutorContract(ExecutorContract):
    @pytest.fixture
    def executor(self) -> Any:
        return LocalExecutor(num_cpus=2, grace_period=2.0)

    @pytest.fixture
    def workspace(self, tmp_path: Path) -> Any:
        from misen_workspace_disk.workspace import DiskWorkspace

        return DiskWorkspace(directory=str(tmp_path / "ws"), fsync=False)
