"""Serializer for Keras models: the ``.keras`` archive Keras itself writes (``model.save``), made byte-stable.

Keras stamps the archive with the time of saving (``date_saved`` in ``metadata.json`` and the zip members'
dates), which would give equal models different result hashes and defeat early cutoff; the archive is rewritten
with fixed member dates and without ``date_saved``. keras is imported inside the methods only.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

from misen.errors import ResultCorruptedError
from misen.serializer import LoadContext, SaveContext, Serializer, class_reference, import_reference

__all__ = ["ModelSerializer", "normalize_archive"]

MODEL_FILE = "model.keras"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def normalize_archive(path: Path) -> None:
    """Rewrite the zip at ``path`` with fixed dates, sorted members and no ``date_saved``: equal models, equal bytes."""
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w") as dst:
        for info in sorted(src.infolist(), key=lambda i: i.filename):
            fixed = zipfile.ZipInfo(info.filename, date_time=_EPOCH)
            fixed.compress_type = info.compress_type
            fixed.external_attr = info.external_attr
            if info.filename == "metadata.json":
                metadata = json.loads(src.read(info))
                metadata.pop("date_saved", None)
                dst.writestr(fixed, json.dumps(metadata, sort_keys=True).encode())
                continue
            with src.open(info) as fin, dst.open(fixed, "w") as fout:
                shutil.copyfileobj(fin, fout, 1024 * 1024)
    os.replace(tmp, path)


class ModelSerializer(Serializer):
    """`keras.Model`: functional, ``Sequential`` and subclassed models (with ``get_config``), as ``model.keras``.

    The archive holds the architecture (``config.json``), the weights (``model.weights.h5``) and the optimizer's
    state; ``keras.saving.load_model`` reads it back with ``safe_mode`` on, except for a model with a ``Lambda``
    layer, whose function Keras stores as bytecode: that is recorded at save time (``"safe_mode": false``) and
    loading it runs that code, like loading a pickle (load workspaces you trust).
    A subclassed model's class (and any custom layer registered with
    ``keras.saving.register_keras_serializable``) must be importable where the result is loaded: its
    ``module:qualname`` is recorded, imported before loading (which registers it) and passed to Keras as a
    custom object.
    """

    PLUGIN_NAME = "keras.model"
    TYPES = ("keras.src.models.model.Model",)
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import keras

        cls = type(value)
        meta: dict[str, Any] = {"keras_version": keras.__version__, "backend": keras.backend.backend()}
        if not cls.__module__.startswith("keras."):
            meta["class"] = class_reference(value, what="Keras model class")
        path = directory / MODEL_FILE
        value.save(path)
        normalize_archive(path)
        with zipfile.ZipFile(path) as archive:
            if b'"class_name": "Lambda"' in archive.read("config.json"):
                # Keras stores a Lambda layer's function as bytecode, which safe_mode refuses to load
                meta["safe_mode"] = False
        return meta

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        import keras

        custom: dict[str, Any] = {}
        if meta.get("class"):
            cls = import_reference(
                meta["class"],
                what="Keras model of class",
                advice="make the class importable where the result is loaded",
            )
            custom[cls.__name__] = cls
            custom[keras.saving.get_registered_name(cls)] = cls
        try:
            return keras.saving.load_model(
                directory / MODEL_FILE,
                custom_objects=custom or None,
                compile=True,
                safe_mode=meta.get("safe_mode", True),
            )
        except (OSError, zipfile.BadZipFile) as exc:
            raise ResultCorruptedError(f"the Keras archive at {directory} cannot be read ({exc})") from None
