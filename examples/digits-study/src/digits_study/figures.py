"""Figures as results: a task returns a `PngImage` (the PNG's bytes), the workspace stores it as ``figure.png``,
and loading the result gives the path of that stored file (``... result plot`` prints it).

The figure then lives with the other results, under the task's identity: it is reproduced, verified and shared
like them, instead of being a file the task left in its scratch directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from misen import Serializer
from misen.serializer import LoadContext, SaveContext

__all__ = ["PngImage", "PngSerializer"]


class PngImage(bytes):
    """The bytes of a PNG image, as a task returns them."""


class PngSerializer(Serializer):
    """Stores a `PngImage` as ``figure.png``; loads it as the `pathlib.Path` of the stored file."""

    PLUGIN_NAME = "digits-study.png"
    TYPES = ("digits_study.figures.PngImage",)
    FORMAT_VERSION = 1

    def match(self, value: Any) -> bool:
        return isinstance(value, PngImage)

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        (directory / "figure.png").write_bytes(bytes(value))
        return {}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        return directory / "figure.png"
