"""misen's workspace on object storage: S3 (s3fs), Google Cloud Storage (gcsfs) and any fsspec URL.

Importing this package imports neither fsspec nor s3fs; they load when a workspace is opened.
"""

from __future__ import annotations

from misen_workspace_s3._errors import CredentialsError, S3WorkspaceError, StorageUnavailableError
from misen_workspace_s3.workspace import S3Settings, S3Workspace

__all__ = ["CredentialsError", "S3Settings", "S3Workspace", "S3WorkspaceError", "StorageUnavailableError"]
