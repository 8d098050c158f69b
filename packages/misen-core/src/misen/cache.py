"""The cache policy, written once: what counts as cached, stale or failed, how results are stored and linked,
early cutoff, carrying results over, and healing damage. Every function takes the `misen.Workspace` whose
storage primitives it uses; no workspace plugin implements any of this.

Records (small JSON objects, by kind and key) that the policy keeps through ``get_record``/``put_record``:

``task``      task hash → ``{"resolved", "result", "name", "key", "time"}``: the task's current result.
``resolved``  resolved hash (identity with dependencies replaced by their result hashes) → ``{"result",
              "provenance"}``: lets an unchanged dependency result reuse its dependents (early cutoff).
``key``       code-agnostic key → ``{"task", "result", "fingerprint", "params", "time"}``: the latest result of
              this call under any version of the code; a different ``task`` hash means the current result is
              stale.
``failure``   task hash → ``{"error", "log", "time", "status", "name"}``: why the last attempt failed.

``result``    result hash → the record of a task whose result is small enough to be kept inside it (its
              ``inline`` field, see `misen.inline`): how such a result is found by its hash alone.

A task's ``resolved``, ``task`` and ``key`` records (and ``result``, for an inline result) are written together as one object with the fields of the
three (`link`); records written by earlier versions hold only their own kind's fields, and both read the same.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from misen.errors import (
    DamagedResultError,
    MisenError,
    NotCachedError,
    ResultCorruptedError,
    SerializerMissingError,
)
from misen.identity import at_default
from misen.inline import RECORD_KIND as INLINE_KIND
from misen.inline import inline_of, load_inline, pack, verify
from misen.integrity import ResultDamagedError
from misen.serializer import check_result, load_result, read_manifest, save_result
from misen.taskmeta import signature_of

if TYPE_CHECKING:
    from misen.tasks import Task
    from misen.workspace import Workspace

__all__ = [
    "carry_over",
    "check_stored",
    "current",
    "cutoff",
    "done",
    "drop_result",
    "failure",
    "files_present",
    "inline_of",
    "is_cached",
    "link",
    "load",
    "load_hash",
    "provenance",
    "record_failure",
    "resolved_result",
    "result_hash",
    "stale_record",
    "status",
    "statuses",
    "store",
    "store_small",
    "stored",
    "stored_many",
]


def result_hash(ws: Workspace, task: Task[Any]) -> str | None:
    """The hash of the task's current result, or ``None`` if it is not cached (or not cacheable)."""
    found = current(ws, task)
    return found[0] if found is not None else None


#: `current`'s ``record`` when the caller has not read the task's record.
_UNREAD: Any = object()


def current(ws: Workspace, task: Task[Any], record: Any = _UNREAD) -> tuple[str, dict[str, Any]] | None:
    """``(result hash, task record)`` of the task's current result (the record may hold the result itself,
    `misen.inline`), or ``None`` if it is not cached (or not cacheable). ``record``: the task's record as the
    caller read it already (``None``: it has none), e.g. in a batch (`Workspace.get_records`)."""
    if not task.cacheable:
        return None
    rec = ws.get_record("task", task.hash) if record is _UNREAD else record
    if rec is None:
        return None
    rh = rec.get("result")
    if isinstance(rh, str) and stored(ws, rh, rec):
        return rh, rec
    return None


def stored(ws: Workspace, rh: str, record: dict[str, Any] | None = None) -> bool:
    """Whether result ``rh`` is stored: inside ``record`` (a record that links it), as a folder, or inside the
    record of another task that produced it (`misen.inline`). No bytes are read or checked."""
    if inline_of(record, rh) is not None or ws.has_result(rh):
        return True
    return _inline(ws, rh) is not None


def _inline(ws: Workspace, rh: str) -> dict[str, Any] | None:
    return inline_of(ws.get_record(INLINE_KIND, rh), rh)


def stored_many(ws: Workspace, hashes: list[str], records: dict[str, dict[str, Any]] | None = None) -> set[str]:
    """Which of ``hashes`` are stored (`stored` of many at once, through batched reads): ``records`` are records
    already read whose inline results count."""
    found = {rh for rec in (records or {}).values() if isinstance(rh := rec.get("result"), str) and inline_of(rec, rh)}
    rest = sorted(set(hashes) - found)
    found |= ws.has_results(rest)
    rest = [rh for rh in rest if rh not in found]
    if rest:
        found |= {rh for rh, rec in ws.get_records(INLINE_KIND, rest).items() if inline_of(rec, rh) is not None}
    return found


def is_cached(ws: Workspace, task: Task[Any]) -> bool:
    """Whether the task has a current result in ``ws``."""
    return result_hash(ws, task) is not None


def done(ws: Workspace, task: Task[Any]) -> bool:
    """Cached, or (not cacheable) every task it needs is done."""
    seen: set[bytes] = set()
    stack: list[Task[Any]] = [task]
    while stack:  # shared dependencies are checked once, not once per path
        t = stack.pop()
        if t._id_bytes in seen:
            continue
        seen.add(t._id_bytes)
        if t.cacheable:
            if not is_cached(ws, t):
                return False
        else:
            stack.extend(t.dependencies)
    return True


def files_present(ws: Workspace, rh: str) -> bool:
    """Whether every file of stored result ``rh`` is there with the size its manifest records (a stat per file,
    no read of the data: what status displays afford for every task)."""
    path = ws.open_result(rh)
    if path is None:
        return _inline(ws, rh) is not None  # its bytes are in the record, checked on every load
    try:
        files = read_manifest(path)["files"]
        return all((path / rel).stat().st_size == info["size"] for rel, info in files.items())
    except (OSError, ResultCorruptedError, KeyError, TypeError, AttributeError):
        return False


def status(ws: Workspace, task: Task[Any], *, check_files: bool = False) -> str:
    """``"done"``, ``"stale"`` (a result of an earlier code version exists), ``"failed"`` or ``"pending"``.

    ``check_files``: a result some of whose files are missing or truncated is not ``"done"`` (what ``list``,
    ``tree`` and ``count`` show); the next run finds the damage and computes the task again.
    """
    rh = result_hash(ws, task)
    if rh is not None and (not check_files or files_present(ws, rh)):
        return "done"
    if ws.get_record("failure", task.hash) is not None:
        return "failed"
    if task.cacheable and stale_record(ws, task) is not None:
        return "stale"
    return "pending"


def statuses(ws: Workspace, tasks: list[Task[Any]], *, check_files: bool = False) -> dict[str, str]:
    """`status` of many tasks at once, by task hash: the same answers through batched reads (``get_records`` of
    each record kind and ``has_results``), so a workspace that batches them answers for 10,000 tasks in a number
    of requests that does not grow with the tasks (the S3 workspace lists its records). ``check_files`` stats
    the files of each done task's result, as `status` does."""
    out: dict[str, str] = {}
    unique = list({t.hash: t for t in tasks}.values())
    records = ws.get_records("task", [t.hash for t in unique if t.cacheable])
    linked = {t.hash: rec.get("result") for t in unique if (rec := records.get(t.hash)) is not None}
    present = stored_many(ws, sorted({rh for rh in linked.values() if isinstance(rh, str)}), records)
    rest = []
    for t in unique:
        rh = linked.get(t.hash)
        if isinstance(rh, str) and rh in present and (not check_files or files_present(ws, rh)):
            out[t.hash] = "done"
        else:
            rest.append(t)
    failures = ws.get_records("failure", [t.hash for t in rest])
    maybe_stale = [t for t in rest if t.hash not in failures and t.cacheable]
    keys = ws.get_records("key", sorted({t.key_hash for t in maybe_stale}))
    earlier = {
        t.hash: rec["result"]
        for t in maybe_stale
        if (rec := keys.get(t.key_hash)) is not None and rec.get("task") != t.hash and isinstance(rec.get("result"), str)
    }
    kept = stored_many(ws, sorted(set(earlier.values())), keys)
    for t in rest:
        if t.hash in failures:
            out[t.hash] = "failed"
        elif earlier.get(t.hash) in kept:
            out[t.hash] = "stale"
        else:
            out[t.hash] = "pending"
    return out


def stale_record(ws: Workspace, task: Task[Any], rec: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The ``key`` record of an earlier code version's result, when the task has no current result (``rec``: that
    record, already read)."""
    rec = rec if rec is not None else ws.get_record("key", task.key_hash)
    if rec is None or rec.get("task") == task.hash:
        return None
    result = rec.get("result")
    if isinstance(result, str) and stored(ws, result, rec):
        return rec
    return None


# --- loading and storing ------------------------------------------------------------------------------------------


def load_hash(ws: Workspace, rh: str, *, serializer: Any = None, inline: dict[str, Any] | None = None) -> Any:
    """The value of stored result ``rh``; `ResultCorruptedError` naming the damage if it fails its checks or its
    loader fails (a workspace with local copies of remote results gets one more try from the source).
    ``inline``: the result itself, from a record already read (`misen.inline`)."""
    if inline is not None:
        return load_inline(inline, rh, serializer=serializer)
    for attempt in range(2):
        path = ws.open_result(rh)
        if path is None:
            inline = _inline(ws, rh)
            if inline is None:
                raise NotCachedError(f"result {rh} is not in workspace {ws.describe()}")
            return load_inline(inline, rh, serializer=serializer)
        try:
            return load_result(path, serializer=serializer)
        except SerializerMissingError:
            raise
        except ResultCorruptedError:
            if attempt == 0 and ws.discard_local_copy(rh):
                continue
            raise
        except MisenError:
            raise
        except Exception as exc:  # a loader that fails on stored bytes: the result is damaged, not the task
            if attempt == 0 and ws.discard_local_copy(rh):
                continue
            raise ResultCorruptedError(
                f"result {rh} could not be loaded ({type(exc).__name__}: {exc})"
            ) from None
    raise AssertionError("unreachable")


def load(ws: Workspace, task: Task[Any]) -> Any:
    """The task's cached result. `NotCachedError` if there is none; a damaged one is dropped (so the next run
    recomputes it) and reported as `ResultCorruptedError` naming the damage."""
    found = current(ws, task)
    if found is None:
        raise NotCachedError(f"{task!r} has no cached result in workspace {ws.describe()}")
    rh, rec = found
    try:
        return load_hash(ws, rh, serializer=task.meta.serializer, inline=inline_of(rec, rh))
    except SerializerMissingError as exc:
        raise NotCachedError(f"{task!r} counts as not cached: {exc}") from None
    except ResultCorruptedError as exc:
        drop_result(ws, task)
        raise DamagedResultError(
            f"the stored result of {task!r} is damaged ({exc}); it was dropped and is recomputed on the next run"
        ) from None


def check_stored(
    ws: Workspace, rh: str, *, full: bool = False, record: dict[str, Any] | None = None
) -> str | None:
    """``None`` if result ``rh`` is stored and its files match its manifest (sizes; every checksum with
    ``full``), else a short description of the damage. ``record``: a record already read that may hold the
    result itself (then that copy is the one checked, in full: it is small)."""
    inline = inline_of(record, rh)
    path = ws.open_result(rh) if inline is None else None
    if path is None:
        inline = inline or _inline(ws, rh)
        if inline is None:
            return "its files are missing"
        try:
            verify(inline, rh)
        except ResultDamagedError as exc:
            return exc.short
        return None
    try:
        check_result(path, read_manifest(path), full=full)
    except ResultDamagedError as exc:
        return exc.short
    except ResultCorruptedError as exc:
        return str(exc)
    return None


def drop_result(ws: Workspace, task: Task[Any]) -> None:
    """Forget the task's current result (its record), so the next run computes it again. A damaged result kept
    in the record (`misen.inline`) is no longer found by its hash either, unless another record holds a sound
    copy under that name."""
    rec = ws.get_record("task", task.hash)
    ws.delete_record("task", task.hash)
    rh = rec.get("result") if rec is not None else None
    if isinstance(rh, str) and inline_of(rec, rh) is not None:
        named = _inline(ws, rh)
        if named is not None and check_stored(ws, rh, record={"inline": named}) is not None:
            ws.delete_record(INLINE_KIND, rh)


def store(ws: Workspace, value: Any, *, serializer: Any = None, durable: bool = True) -> str:
    """Serialize and commit ``value``; returns its result hash. Equal results are stored once (an equal one
    stored before and damaged since is replaced). ``durable=False`` leaves the final flush to ``ws.sync()``."""
    with ws.staging_dir() as staged:
        rh, _ = save_result(value, staged, serializer, durable=durable)
        if ws.has_result(rh) and check_stored(ws, rh, full=True) is not None:
            ws.delete_result(rh)
        if not ws.has_result(rh):
            ws.commit_result(rh, staged, durable=durable)
    return rh


def store_small(ws: Workspace, value: Any, *, serializer: Any = None, durable: bool = True) -> tuple[str, Any]:
    """Store ``value`` for `link`: ``(result hash, inline)``, where ``inline`` is the `misen.inline` field to keep
    in the task's record for a small result (nothing is written yet), or ``None`` for a result stored as a folder
    now (`store`)."""
    inline = pack(value, serializer)
    if inline is not None:
        return inline["result_hash"], inline
    return store(ws, value, serializer=serializer, durable=durable), None


def _param_names(task: Task[Any]) -> list[str]:
    try:
        return sorted(signature_of(task.fn).names)
    except Exception:
        return []


def link(
    ws: Workspace,
    task: Task[Any],
    *,
    resolved: str,
    result: str,
    provenance: dict[str, Any] | None = None,
    fingerprint: dict[str, Any] | None = None,
    durable: bool = True,
    extra: dict[str, Any] | None = None,
    inline: dict[str, Any] | None = None,
) -> None:
    """Record ``result`` as the task's current result (and as the result of its resolved identity).

    The ``resolved`` (when ``provenance`` is given), ``task`` and ``key`` records are one object holding the
    fields of all three, written once through `Workspace.put_records` (a workspace may store it once and
    reach it under the three names). ``inline`` (from `store_small`): the result itself, kept in that record,
    which is then also named ``("result", result)``.
    """
    now = time.time()
    record: dict[str, Any] = {
        "task": task.hash,
        "resolved": resolved,
        "result": result,
        "name": task.name,
        "key": task.key_hash,
        "fingerprint": fingerprint,
        "params": _param_names(task),
        "time": now,
    }
    names = [("task", task.hash), ("key", task.key_hash)]
    if provenance is not None:
        record["provenance"] = provenance
        names.insert(0, ("resolved", resolved))
    if extra:
        record.update(extra)
    if inline is not None:
        record["inline"] = inline
        names.append((INLINE_KIND, result))
    ws.put_records(names, record, durable=durable)
    ws.delete_record("failure", task.hash)


def resolved_result(ws: Workspace, resolved: str) -> str | None:
    """The result an equal resolved identity produced before, if it is still stored intact (early cutoff)."""
    found = cutoff(ws, resolved)
    return found[0] if found is not None else None


def cutoff(ws: Workspace, resolved: str) -> tuple[str, dict[str, Any] | None] | None:
    """`resolved_result` with the result itself when its record holds it (`misen.inline`): ``(result hash,
    inline or None)``, from one read of the ``resolved`` record."""
    rec = ws.get_record("resolved", resolved)
    if rec is None:
        return None
    result = rec.get("result")
    # Reusing a result under a new identity is rare: worth checking every byte of it first.
    if isinstance(result, str) and stored(ws, result, rec) and check_stored(ws, result, full=True, record=rec) is None:
        return result, inline_of(rec, result)
    return None


def provenance(ws: Workspace, task: Task[Any]) -> dict[str, Any] | None:
    """Where, when and how the task's current result was computed."""
    rec = ws.get_record("task", task.hash)
    if rec is None:
        return None
    res = ws.get_record("resolved", rec.get("resolved", ""))
    prov = dict((res or {}).get("provenance") or {})
    for field in ("accepted_from", "carried_over"):
        if rec.get(field):
            prov[field] = rec[field]
    return prov or None


def record_failure(
    ws: Workspace, task: Task[Any], *, status: str, error: str, log: str | None, **extra: Any
) -> None:
    """Record why the task's last attempt did not produce a result; ``extra``: where and when it ran."""
    record = {"status": status, "error": error, "log": log, "time": time.time(), "name": task.name, **extra}
    ws.put_record("failure", task.hash, record, durable=False)


def failure(ws: Workspace, task: Task[Any]) -> dict[str, Any] | None:
    """The task's failure record, if its last attempt failed."""
    return ws.get_record("failure", task.hash)


# --- carrying results over ----------------------------------------------------------------------------------------


def carry_over(ws: Workspace, task: Task[Any]) -> bool:
    """Honour ``@meta(defaults)`` for a parameter added since a result was stored: link that result to this task
    and return ``True``.

    It applies to exactly these calls: the task has no current result; the result of an earlier version of its
    code exists for the same call (its code-agnostic key); every argument named in ``defaults`` is at its
    default value here (so it is left out of the identity); at least one of those parameters did not exist when
    that result was made; and the task's own function is the only code that changed. Any call with another
    value, and any change in other code, stays stale. The task record says the result was carried over (shown
    in provenance).
    """
    defaults = task.meta.defaults
    if not task.cacheable or not defaults:
        return False
    rec = stale_record(ws, task)
    if rec is None:
        return False
    old_params = rec.get("params")
    if not isinstance(old_params, list) or not any(name not in old_params for name in defaults):
        return False
    fp = task.fingerprint
    old = rec.get("fingerprint") or {}
    if fp is not None:
        new_items = fp.as_dict()["items"]
        old_items = old.get("items", {}) if isinstance(old, dict) else {}
        own = f"{getattr(task.fn, '__module__', '')}.{task.fn.__qualname__}"
        for name in set(new_items) | set(old_items):
            a, b = old_items.get(name), new_items.get(name)
            if name.endswith(task.fn.__qualname__) or name == own:
                continue
            if a is None or b is None or a.get("digest") != b.get("digest"):
                return False
    # Every argument listed in defaults must be at its default (left out of the identity).
    for name in defaults:
        if name in task.arguments and not at_default(task.arguments[name], defaults[name]):
            return False
    result = rec.get("result")
    if not isinstance(result, str) or check_stored(ws, result, record=rec) is not None:
        return False
    link(
        ws,
        task,
        resolved=str(rec.get("resolved") or ""),
        result=result,
        fingerprint=fp.as_dict() if fp is not None else None,
        extra={"carried_over": {"from_task": rec.get("task"), "defaults": sorted(defaults)}},
        inline=inline_of(rec, result),  # a small result travels with the record
    )
    return True
