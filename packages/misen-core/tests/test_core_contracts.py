"""The built-in memory workspace and in-process executor pass the contract suites they ship."""

from __future__ import annotations

import pytest
from misen import InProcessExecutor, MemoryWorkspace
from misen.testing import ExecutorContract, WorkspaceContract


class TestMemoryWorkspace(WorkspaceContract):
    @pytest.fixture
    def workspace(self):
        return MemoryWorkspace()


class TestInProcessExecutor(ExecutorContract):
    @pytest.fixture
    def executor(self):
        return InProcessExecutor()

    @pytest.fixture
    def workspace(self):
        return MemoryWorkspace()
