"""The built-in memory workspace and in-process and threads executors pass the contract suites they ship."""

from __future__ import annotations

import pytest
from misen import InProcessExecutor, MemoryWorkspace
from misen._builtin.threads import ThreadsExecutor
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


class TestThreadsExecutor(ExecutorContract):
    @pytest.fixture
    def executor(self):
        return ThreadsExecutor(max_workers=3)

    @pytest.fixture
    def workspace(self):
        return MemoryWorkspace()
