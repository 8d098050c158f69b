"""misen's workspace contract, run against the S3 workspace on s3:// (moto), memory:// and file://."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from misen import cache
from misen.errors import NotCachedError, ResultCorruptedError
from misen.serializer import read_manifest
from misen.testing import WorkspaceContract
from misen.workspace import Workspace
from misen_workspace_s3 import S3Workspace


class TestS3WorkspaceContract(WorkspaceContract):
    @pytest.fixture
    def workspace(self, make_ws: Callable[..., S3Workspace]) -> Workspace:
        return make_ws()

    def test_corrupted_result_is_not_returned(self, workspace: Workspace) -> None:
        """Stricter than the contract: a damaged local copy is fetched again; a damaged stored copy is refused."""
        assert isinstance(workspace, S3Workspace)
        value = b"0123456789" * 100
        h = cache.store(workspace, value)
        path = workspace.open_result(h)
        assert path is not None
        victim = path / next(iter(read_manifest(path)["files"]))
        victim.write_bytes(b"garbage-of-the-same-size".ljust(len(value), b"!")[: len(value)])
        if workspace.remote.kind == "local":  # the stored copy itself: nothing to heal from
            with pytest.raises(ResultCorruptedError):
                cache.load_hash(workspace, h)
            return
        assert cache.load_hash(workspace, h) == value  # healed from the store, checked on the way
        # Now damage the stored copy and drop the local one: the damage is detected, never returned.
        workspace.remote.write(f"results/{h}/{victim.name}", b"x" * len(value))
        workspace.open_result(h)
        import shutil

        shutil.rmtree(workspace._cached(h))
        with pytest.raises((ResultCorruptedError, NotCachedError)):
            cache.load_hash(workspace, h)
