"""misen's runner as the implementation of the `misen.hookspecs.misen_compute` hook (what ``Task.result()`` uses
to compute a result it does not find): the tasks know the hook, not the runner, so the runner may import them.
The runner is imported when a result is first computed this way, not when plugins are registered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from misen.hookspecs import hookimpl

if TYPE_CHECKING:
    from misen.runner import RunReport
    from misen.session import Session
    from misen.tasks import Task
    from misen.workspace import Workspace


@hookimpl(trylast=True)
def misen_compute(tasks: Sequence[Task[Any]], workspace: Workspace, session: Session) -> RunReport:
    """Run ``tasks`` with the session's configured executor into ``workspace``."""
    from misen.runner import run  # the whole engine: loaded on first use, so registering plugins stays cheap

    return run(list(tasks), workspace=workspace, session=session)
