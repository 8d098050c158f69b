"""``verify`` under the conditions a result was made under, and what differed when it still disagrees.

Each stored result records its thread variables and CPU count (`misen.conditions`). Tasks whose recorded
conditions match this process are recomputed here (`misen.reproducibility.verify`); the others are recomputed in
a child process per set of conditions, started with those thread variables, bound to that many CPUs and with the
project's environment files loaded, as a worker is. A result that still differs is reported with the provenance
fields (host, Python, misen, software environment) that differ from the recomputation's.
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from misen import __version__, cache
from misen.conditions import current_conditions, is_thread_variable
from misen.reproducibility import VerifyResult, verify
from misen.session import project_root
from misen.snapshot import load_env_files
from misen.tasks import iter_graph
from misen.worker import environment_digest
from misen.workspace import Workspace, hostname

if TYPE_CHECKING:
    from misen.tasks import Task

__all__ = ["differences", "verify_as_recorded"]

_COMPARED = ("host", "python", "misen", "environment")


def _recorded(task: Task[Any], ws: Workspace) -> dict[str, Any]:
    prov = cache.provenance(ws, task) if task.cacheable else None
    return dict(prov or {})


def verify_as_recorded(
    tasks: list[Task[Any]], ws: Workspace, sample: int | None = None
) -> list[tuple[VerifyResult, str]]:
    """`misen.reproducibility.verify` under each result's recorded conditions; ``(result, what differed)``."""
    candidates = [t for t in iter_graph(tasks) if t.cacheable]
    if sample is not None and sample < len(candidates):
        candidates = random.sample(candidates, sample)
    here = current_conditions()
    groups: dict[str, list[Task[Any]]] = {}
    for task in candidates:
        conditions = _recorded(task, ws).get("conditions")
        same = not isinstance(conditions, dict) or conditions == here or not ws.SHARED_ACROSS_PROCESSES
        key = "" if same else json.dumps(conditions, sort_keys=True)
        groups.setdefault(key, []).append(task)
    found: dict[str, tuple[VerifyResult, dict[str, Any]]] = {}
    for key, members in groups.items():
        wanted = {t.hash for t in members}
        if not key:
            pairs = [(res, {**_here(), "conditions": here}) for res in verify(members, ws)]
        else:
            pairs = _verify_in_child(members, ws, json.loads(key))
        for res, where in pairs:
            if res.task.hash in wanted:  # verify also walks the members' dependencies: keep what was asked
                found[res.task.hash] = (res, where)
    out = []
    for task in candidates:
        res, where = found[task.hash]
        note = differences(_recorded(task, ws), where) if res.status == "different" else ""
        out.append((res, note))
    return out


def _here() -> dict[str, Any]:
    return {
        "host": hostname(),
        "python": platform.python_version(),
        "misen": __version__,
        "environment": environment_digest(),
    }


def differences(recorded: dict[str, Any], recomputed: dict[str, Any]) -> str:
    """What differs between the stored result's provenance and the recomputation (a phrase, or a note)."""
    changed = [
        f"{key} {recorded.get(key)} then, {recomputed.get(key)} now"
        for key in _COMPARED
        if recorded.get(key) is not None and recorded.get(key) != recomputed.get(key)
    ]
    conditions = recorded.get("conditions")
    if not isinstance(conditions, dict):
        changed.append("the stored result has no recorded conditions (made by an older misen)")
    elif conditions != recomputed.get("conditions"):
        changed.append("thread settings could not be reproduced")
    if changed:
        return "differs from when it was stored: " + "; ".join(changed)
    return "same host, software and thread settings as when it was stored: the task itself is non-deterministic"


def _verify_in_child(
    tasks: list[Task[Any]], ws: Workspace, conditions: dict[str, Any]
) -> list[tuple[VerifyResult, dict[str, Any]]]:
    env = {k: v for k, v in os.environ.items() if not is_thread_variable(k)}
    env.update({str(k): str(v) for k, v in (conditions.get("threads") or {}).items()})
    with tempfile.TemporaryDirectory(prefix="misen-verify-") as tmp:
        request = Path(tmp) / "request.pickle"
        answer = Path(tmp) / "answer.pickle"
        request.write_bytes(
            pickle.dumps(
                {"sys_path": list(sys.path), "tasks": tasks, "workspace": ws.spec(), "cpus": conditions.get("cpus")}
            )
        )
        code = "import sys; from misen.verify_conditions import _child; _child(sys.argv[1], sys.argv[2])"
        proc = subprocess.run(
            [sys.executable, "-c", code, str(request), str(answer)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not answer.exists():
            error = (proc.stderr.strip().splitlines() or ["the verifying process failed"])[-1]
            return [(VerifyResult(t, "error", cache.result_hash(ws, t), None, error), {}) for t in tasks]
        rows, where = pickle.loads(answer.read_bytes())
    by_hash = {t.hash: t for t in tasks}
    return [
        (VerifyResult(by_hash[h], status, stored, recomputed, error), where)
        for h, status, stored, recomputed, error in rows
        if h in by_hash
    ]


def _child(request_path: str, answer_path: str) -> None:
    """The verifying process: bind to the recorded CPU count, load the environment files, verify, answer."""
    request = pickle.loads(Path(request_path).read_bytes())
    for entry in reversed(request["sys_path"]):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    cpus = request.get("cpus")
    if isinstance(cpus, int) and cpus > 0 and hasattr(os, "sched_setaffinity"):
        available = sorted(os.sched_getaffinity(0))
        if cpus < len(available):
            os.sched_setaffinity(0, available[:cpus])
    os.environ.update(load_env_files(project_root()))
    ws = Workspace.from_spec(request["workspace"])
    results = verify(request["tasks"], ws)
    rows = [(r.task.hash, r.status, r.stored, r.recomputed, r.error) for r in results]
    where = {**_here(), "conditions": current_conditions()}
    Path(answer_path).write_bytes(pickle.dumps((rows, where)))
