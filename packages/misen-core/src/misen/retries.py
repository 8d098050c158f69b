"""Retries of flaky tasks: ``@meta(retries=N)``, overridden for a run by ``run --retries N`` (``$MISEN_RETRIES``).

The worker calls a task through `call_with_retries`; each failed attempt but the last is written to the task's
log and the call is made again. The attempts a stored result took go into its provenance (`retry_provenance`).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from misen.errors import MisenError

if TYPE_CHECKING:
    from misen.tasks import Task

__all__ = ["ENV_VAR", "allowed_retries", "call_with_retries", "retry_provenance"]

#: Set by ``run --retries N``; wins over ``@meta(retries=...)`` for every task of the run.
ENV_VAR = "MISEN_RETRIES"

def allowed_retries(task: Task[Any]) -> int:
    """How many times a failing call of ``task`` is retried."""
    override = os.environ.get(ENV_VAR, "").strip()
    if override:
        try:
            value = int(override)
        except ValueError:
            raise MisenError(f"${ENV_VAR} must be a whole number of retries, got {override!r}") from None
        return max(value, 0)
    return int(getattr(task.meta, "retries", 0) or 0)


def call_with_retries(task: Task[Any], call: Callable[[], Any]) -> tuple[Any, int]:
    """``(call(), attempts)``: ``call`` made again after an exception while ``task``'s retries are left."""
    retries = allowed_retries(task)
    attempt = 0
    while True:
        attempt += 1
        try:
            return call(), attempt
        except Exception as exc:
            if attempt > retries:
                raise
            print(
                f"misen: attempt {attempt} of {retries + 1} of {task.name} failed "
                f"({type(exc).__name__}: {exc}); retrying",
                flush=True,
            )
            traceback.print_exception(exc, file=sys.stdout)
            sys.stdout.flush()


def retry_provenance(task: Task[Any], attempts: int) -> dict[str, Any]:
    """``{"attempts": n, "retries": allowed}`` for a result computed with retries allowed (else nothing)."""
    allowed = allowed_retries(task)
    if allowed == 0 and attempts == 1:
        return {}
    return {"attempts": attempts, "retries": allowed}
