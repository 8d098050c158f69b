"""The disk workspace passes misen's shared workspace contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from misen.testing.contracts import WorkspaceContract
from misen_workspace_disk import DiskWorkspace, DiskWorkspaceSettings


class TestDiskWorkspaceContract(WorkspaceContract):
    @pytest.fixture
    def workspace(self, tmp_path: Path) -> DiskWorkspace:  # type: ignore[override]
        return DiskWorkspace(DiskWorkspaceSettings(directory=str(tmp_path / "ws")))


class TestDiskWorkspaceContractPerTaskLocks(WorkspaceContract):
    """The same contract where the workspace was switched to per-task lock files (byte-range locks refused)."""

    @pytest.fixture
    def workspace(self, tmp_path: Path) -> DiskWorkspace:  # type: ignore[override]
        (tmp_path / "ws" / "locks").mkdir(parents=True)
        (tmp_path / "ws" / "locks" / "per-task").touch()
        return DiskWorkspace(DiskWorkspaceSettings(directory=str(tmp_path / "ws")))
