"""The S3 workspace as a misen plugin: registered by name and aliases, and cheap to discover."""

from __future__ import annotations

import subprocess
import sys

from misen.session import registry
from misen_workspace_s3 import S3Workspace


def test_registered_as_s3_and_its_aliases() -> None:
    for name in ("s3", "gcs", "fsspec", "S3"):
        assert registry().get("workspace", name) is S3Workspace


def test_discovery_does_not_import_the_storage_libraries() -> None:
    code = (
        "import sys\n"
        "from misen.session import registry\n"
        "registry().get('workspace', 's3')\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('fsspec', 's3fs', 'botocore', 'aiobotocore'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_settings_carry_help_for_the_docs() -> None:
    import attrs

    for field in attrs.fields(S3Workspace.Settings):
        assert field.metadata.get("help"), f"setting {field.name} has no help text"
