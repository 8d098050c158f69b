"""Hook implementations of misen_workspace_s3: registers the ``s3`` workspace (aliases ``gcs``, ``fsspec``)."""

from __future__ import annotations

from misen import hookimpl
from misen.plugins import Lazy

__all__ = ["misen_add_workspaces"]


@hookimpl
def misen_add_workspaces() -> list[Lazy]:
    # imported when a run uses it
    return [Lazy("s3", "misen_workspace_s3.workspace:S3Workspace", aliases=("gcs", "fsspec"))]
