"""misen's workspace on object storage: S3 (s3fs), Google Cloud Storage (gcsfs) and any fsspec URL.

Importing this package imports neither fsspec nor s3fs; they load when a workspace is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from misen.plugins import lazy_exports

__all__ = ["CredentialsError", "S3Settings", "S3Workspace", "S3WorkspaceError", "StorageUnavailableError"]

if TYPE_CHECKING:
    from misen_workspace_s3._errors import CredentialsError, S3WorkspaceError, StorageUnavailableError
    from misen_workspace_s3.workspace import S3Settings, S3Workspace

# Imported on first use: registering the plugin imports this package, not the backend a run may never use.
__getattr__ = lazy_exports(
    __name__,
    {
        "CredentialsError": "_errors",
        "S3Settings": "workspace",
        "S3Workspace": "workspace",
        "S3WorkspaceError": "_errors",
        "StorageUnavailableError": "_errors",
    },
)
