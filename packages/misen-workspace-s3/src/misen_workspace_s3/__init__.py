"""misen's workspace on object storage: S3 (s3fs), Google Cloud Storage (gcsfs) and any fsspec URL.

Importing this package imports neither fsspec nor s3fs; they load when a workspace is opened.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["CredentialsError", "S3Settings", "S3Workspace", "S3WorkspaceError", "StorageUnavailableError"]

if TYPE_CHECKING:
    from misen_workspace_s3._errors import CredentialsError, S3WorkspaceError, StorageUnavailableError
    from misen_workspace_s3.workspace import S3Settings, S3Workspace

# Where each name lives: imported on first use, so that registering the plugin (which imports this package)
# does not import the backend a run may never use.
_WHERE = {
    "CredentialsError": "_errors",
    "S3Settings": "workspace",
    "S3Workspace": "workspace",
    "S3WorkspaceError": "_errors",
    "StorageUnavailableError": "_errors",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
