"""``misen workspace check``: read every stored file of a workspace, report what is damaged, optionally drop it.

Like ``git fsck``: each result's files are checksummed in full against its manifest (ignoring records of earlier
verifications), each manifest must name the result it is stored as, and each record must point at a result that
is stored. With ``repair``, damaged results are deleted together with every record pointing at them, so the next
run recomputes those tasks instead of trusting or tripping over them. Works on any workspace, through the
storage primitives of `misen.workspace.Workspace`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from misen.cache import check_stored
from misen.errors import ResultCorruptedError
from misen.inline import RECORD_KIND as INLINE_KIND
from misen.inline import inline_of, size_of, verify
from misen.integrity import ResultDamagedError
from misen.serializer import check_result, read_manifest
from misen.workspace import Workspace

__all__ = ["CheckReport", "Damage", "check_workspace"]

#: Record kinds whose ``result`` field names a stored result.
REFERRING_KINDS = ("task", "key", "resolved")


@attrs.define
class Damage:
    """One damaged result: its hash, what is wrong (``kind``, ``file``, ``detail``), the tasks that use it."""

    result: str
    kind: str
    file: str | None
    detail: str
    tasks: list[str] = attrs.field(factory=list)
    repaired: bool = False

    def describe(self) -> str:
        names = f" (used by {', '.join(sorted(set(self.tasks))[:5])})" if self.tasks else ""
        return f"result {self.result}: {self.detail}{names}"


@attrs.define
class CheckReport:
    """What a check found: results checked and their bytes, damaged results, records pointing nowhere."""

    results: int = 0
    bytes: int = 0
    damaged: list[Damage] = attrs.field(factory=list)
    #: ``(kind, key, result)`` of records whose result is not stored (or was dropped as damaged).
    dangling: list[tuple[str, str, str]] = attrs.field(factory=list)
    skipped_in_use: list[str] = attrs.field(factory=list)

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.dangling


def _references(
    ws: Workspace, inline: dict[tuple[str, str], dict[str, Any]]
) -> tuple[list[tuple[str, str, str]], dict[str, list[str]], dict[str, list[str]]]:
    """Every ``(kind, key, result)`` reference, task names by result, and task hashes by result; fills ``inline``
    with the inline results (`misen.inline`) records carry, by ``(kind, key)``."""
    refs: list[tuple[str, str, str]] = []
    names: dict[str, list[str]] = {}
    holders: dict[str, list[str]] = {}
    for kind in (*REFERRING_KINDS, INLINE_KIND):
        keys = list(ws.iter_records(kind))
        for key, rec in ws.get_records(kind, keys).items():
            result = rec.get("result") if kind != INLINE_KIND else key
            if not isinstance(result, str):
                continue
            if "inline" in rec:
                inline[(kind, key)] = rec["inline"]
            if kind == INLINE_KIND:
                continue
            refs.append((kind, key, result))
            if kind == "task":
                holders.setdefault(result, []).append(key)
                if rec.get("name"):
                    names.setdefault(result, []).append(str(rec["name"]))
    return refs, names, holders


def _check_one(ws: Workspace, result: str) -> tuple[int, Damage | None]:
    try:
        path = ws.open_result(result)
        if path is None:
            return 0, Damage(result, "missing", None, "listed but cannot be opened")
        manifest = read_manifest(path)
        if manifest.get("result_hash", result) != result:
            return 0, Damage(result, "manifest", "manifest.json", "its manifest describes another result")
        check_result(path, manifest, full=True)
    except ResultDamagedError as exc:
        return 0, Damage(result, exc.kind, exc.file, exc.detail)
    except ResultCorruptedError as exc:
        return 0, Damage(result, "unreadable", None, str(exc))
    size = sum(int(info.get("size", 0)) for info in manifest["files"].values() if isinstance(info, dict))
    return size, None


def check_workspace(
    ws: Workspace, *, repair: bool = False, progress: Callable[[int, str], None] | None = None
) -> CheckReport:
    """Check every stored result and every record of ``ws``; with ``repair``, drop what is damaged.

    Args:
        ws: The workspace.
        repair: Delete damaged results and every record pointing at them, and records pointing at results
            that are not stored. Results of a task whose lock is held (running now) are reported, not touched.
        progress: Called with ``(index, result hash)`` before each result is read.
    """
    report = CheckReport()
    carried: dict[tuple[str, str], dict[str, Any]] = {}
    refs, names, holders = _references(ws, carried)
    folders = set()
    for i, result in enumerate(ws.iter_results()):
        if progress is not None:
            progress(i, result)
        folders.add(result)
        size, damage = _check_one(ws, result)
        report.results += 1
        report.bytes += size
        if damage is None:
            continue
        damage.tasks = names.get(result, [])
        report.damaged.append(damage)
    # Small results kept inside records: each copy checked (a record named by the result's hash, and the task
    # records that carry the same bytes, which are separate objects on some workspaces).
    inline_ok: set[str] = set()
    inline_bad: set[str] = set()
    for (kind, key), inline in carried.items():
        result = key if kind == INLINE_KIND else str(inline.get("result_hash", ""))
        try:
            verify(inline, result)
        except ResultDamagedError as exc:
            if result not in inline_bad:
                inline_bad.add(result)
                report.damaged.append(Damage(result, exc.kind, exc.file, exc.detail, tasks=names.get(result, [])))
            continue
        if result not in inline_ok:
            inline_ok.add(result)
            report.results += 1
            report.bytes += size_of(inline)
    doomed = {d.result for d in report.damaged}
    for kind, key, result in refs:
        if result in doomed or (result not in folders and result not in inline_ok and not ws.has_result(result)):
            report.dangling.append((kind, key, result))
    if repair:
        _repair(ws, report, holders, {rh for rh in inline_bad | inline_ok if rh in doomed})
    return report


def _repair(ws: Workspace, report: CheckReport, holders: dict[str, list[str]], inline: set[str]) -> None:
    in_use = set()
    for damage in report.damaged:
        if any(ws.lock_holder(task) is not None for task in holders.get(damage.result, [])):
            in_use.add(damage.result)
            report.skipped_in_use.append(damage.result)
            continue
        ws.delete_result(damage.result)
        if damage.result in inline:
            ws.delete_record(INLINE_KIND, damage.result)
        damage.repaired = True
    for kind, key, result in report.dangling:
        if result in in_use:
            continue
        rec: dict[str, Any] | None = ws.get_record(kind, key)
        # A run may have stored the same result again since it was dropped: then the record is right.
        # (A record carrying a sound copy of the result inline is right too.)
        if rec is not None and rec.get("result") == result and not ws.has_result(result):
            if result in inline or inline_of(rec, result) is None or check_stored(ws, result, record=rec) is not None:
                ws.delete_record(kind, key)

