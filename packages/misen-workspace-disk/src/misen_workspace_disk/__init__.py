"""misen's default workspace: cached results, records, logs, locks and scratch directories in a directory."""

from __future__ import annotations

from misen_workspace_disk.workspace import DiskWorkspace, DiskWorkspaceSettings, WorkspaceStorageError

__all__ = ["DiskWorkspace", "DiskWorkspaceSettings", "WorkspaceStorageError"]
