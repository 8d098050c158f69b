"""Hook implementations of misen_workspace_s3: registers the ``s3`` workspace (aliases ``gcs``, ``fsspec``)."""

from __future__ import annotations

from misen import hookimpl
from misen.workspace import Workspace

from misen_workspace_s3.workspace import S3Workspace

__all__ = ["misen_add_workspaces"]


@hookimpl
def misen_add_workspaces() -> list[type[Workspace]]:
    return [S3Workspace]
