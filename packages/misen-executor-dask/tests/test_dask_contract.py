"""The executor contract every misen executor passes, run against the Dask executor on a real two-worker cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from misen.testing.contracts import ExecutorContract
from misen_executor_dask import DaskExecutor


class TestDaskExecutorContract(ExecutorContract):
    @pytest.fixture
    def executor(self, dask_cluster: Any) -> Any:
        return DaskExecutor(address=dask_cluster.scheduler_address, grace_period=2.0)

    @pytest.fixture
    def workspace(self, tmp_path: Path) -> Any:
        from misen_workspace_disk.workspace import DiskWorkspace

        return DiskWorkspace(directory=str(tmp_path / "ws"), fsync=False)
