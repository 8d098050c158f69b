"""Contract test suites for plugin authors: subclass them in your package's tests.

```python
from misen.testing import WorkspaceContract

class TestMyWorkspace(WorkspaceContract):
    @pytest.fixture
    def workspace(self, tmp_path):
        return MyWorkspace(root=str(tmp_path))
```

Each suite states what misen relies on from an implementation; every built-in plugin passes them.
"""

from misen.testing.contracts import ExecutorContract, SerializerContract, WorkspaceContract

__all__ = ["ExecutorContract", "SerializerContract", "WorkspaceContract"]
