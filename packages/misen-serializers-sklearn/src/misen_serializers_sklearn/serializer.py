"""Serializer for scikit-learn estimators and pipelines: skops (a format that runs no code on load), with pickle
(dill) as the fallback. scikit-learn and skops are imported inside `save`/`load` only.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

from misen.errors import ResultCorruptedError
from misen.serializer import LoadContext, SaveContext, Serializer
from misen.stdlib import PickleSerializer

__all__ = ["EstimatorSerializer", "importable"]

SKOPS_FILE = "estimator.skops"


def _normalize_zip(path: Path) -> None:
    """Rewrite the zip skops wrote so equal estimators give equal bytes (and equal result hashes).

    skops names its array files and its ``__id__`` fields after ``id()`` of objects, and stamps members with
    the current time. Ids only express identity within one file, so they are renumbered in order of first
    appearance in ``schema.json`` (one numbering for both); timestamps are fixed.
    """
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(path) as src:
        schema = src.read("schema.json").decode()
        numbers: dict[str, str] = {}
        for match in _ID.finditer(schema):
            numbers.setdefault(match.group(2) or match.group(3), str(len(numbers)))

        def renumber(match: re.Match[str]) -> str:
            if match.group(2) is not None:
                return f"{match.group(1)}{numbers[match.group(2)]}"
            return f'"{numbers[match.group(3)]}.npy"'

        renamed = {info.filename: _rename(info.filename, numbers) for info in src.infolist()}
        with zipfile.ZipFile(tmp, "w") as dst:
            for info in sorted(src.infolist(), key=lambda i: renamed[i.filename]):
                fixed = zipfile.ZipInfo(renamed[info.filename], date_time=(1980, 1, 1, 0, 0, 0))
                fixed.compress_type = info.compress_type
                fixed.external_attr = info.external_attr
                if info.filename == "schema.json":
                    dst.writestr(fixed, _ID.sub(renumber, schema).encode())
                    continue
                with src.open(info) as fin, dst.open(fixed, "w") as fout:
                    shutil.copyfileobj(fin, fout, 1024 * 1024)
    os.replace(tmp, path)


_ID = re.compile(r'("__id__":\s*)(\d+)|"(\d+)\.npy"')


def _rename(name: str, numbers: dict[str, str]) -> str:
    stem, dot, ext = name.partition(".")
    return f"{numbers[stem]}.{ext}" if dot and stem in numbers else name


def importable(name: str) -> bool:
    """Whether the dotted ``name`` of a class or function can be imported in another process."""
    if "<" in name or name.startswith("__main__."):
        return False
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


class EstimatorSerializer(Serializer):
    """`sklearn.base.BaseEstimator` (estimators, pipelines, column transformers, search results).

    **Trust model.** skops stores an estimator as a description, not a pickle, and refuses on load any type it
    does not trust by default unless the caller names it. At save time misen asks skops which types of the file
    just written are outside its default trust (``sklearn.tree._tree.Tree``, your own estimator classes…) and
    records them in the result's metadata; the load trusts exactly those. A file swapped for one naming other
    types is refused and reported as corrupted (so the task is recomputed). This guards against a changed file,
    not against someone able to rewrite the whole workspace (the manifest included): load workspaces you trust.

    Estimators skops cannot describe or that refer to things another process cannot import (a lambda in a
    ``FunctionTransformer``, a class defined in ``__main__``), and every estimator when skops is not installed,
    are stored like any other object: pickle, else dill (joblib would add nothing: pickle protocol 5 already
    writes arrays without copies). Loading a pickle runs code named by the file; the metadata records
    ``"format": "pickle"``, the engine, and why.
    """

    PLUGIN_NAME = "sklearn.estimator"
    TYPES = ("sklearn.base.BaseEstimator",)
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        try:
            import skops.io as sio
        except ImportError:
            reason = "skops is not installed"
        else:
            path = directory / SKOPS_FILE
            try:
                sio.dump(value, path)
                _normalize_zip(path)
                trusted = sorted(sio.get_untrusted_types(file=path))
                stray = [name for name in trusted if not importable(name)]
                if not stray:
                    return {"format": "skops", "trusted": trusted}
                # skops stores functions and classes by name: a lambda or a __main__ class would not load back
                reason = f"it refers to {', '.join(stray)}, which another process cannot import"
            except Exception as exc:
                reason = f"skops refused it ({type(exc).__name__}: {exc})"
            path.unlink(missing_ok=True)
        meta = PickleSerializer().save(value, directory, ctx)
        return {"format": "pickle", "engine": meta["engine"], "reason": reason}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        if meta.get("format") == "pickle":
            return PickleSerializer().load(directory, {"engine": meta.get("engine", "pickle")}, ctx)
        try:
            import skops.io as sio
        except ImportError:
            raise ResultCorruptedError(
                "this scikit-learn result was stored with skops, which is not installed; "
                'install it (`pip install "misen[sklearn]"`) or recompute the result'
            ) from None
        trusted = list(meta.get("trusted", []))
        try:
            return sio.load(directory / SKOPS_FILE, trusted=trusted)
        except sio.exceptions.UntrustedTypesFoundException as exc:
            raise ResultCorruptedError(
                f"the stored estimator at {directory} names types that were not recorded when it was saved ({exc}); "
                "it is not loaded and counts as not cached"
            ) from None
