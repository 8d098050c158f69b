"""Serializer and hasher for `PIL.Image.Image`. Pillow is imported inside `save`/`load`/`reduce` only.

Images in a mode PNG holds exactly (``1``, ``L``, ``LA``, ``P``, ``RGB``, ``RGBA``, ``I;16``) are written as
``image.png``; every other mode (``F``, ``I``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ``PA``…) as its own raw
pixel bytes, ``image.raw``, with the mode and size in the metadata, because PNG would convert it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from misen.errors import ResultCorruptedError, UnhashableArgumentError
from misen.hashing import Hasher
from misen.serializer import LoadContext, SaveContext, Serializer

__all__ = ["MAX_HASHED_PIXELS_BYTES", "PNG_MODES", "ImageHasher", "ImageSerializer"]

#: Modes that PNG stores and Pillow reads back unchanged.
PNG_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I;16"})
#: Images whose pixels take more than this are refused as task arguments.
MAX_HASHED_PIXELS_BYTES = 16 * 1024 * 1024


def _palette(image: Any) -> dict[str, Any] | None:
    if image.palette is None or image.mode not in ("P", "PA"):
        return None
    mode = image.palette.mode
    return {"mode": mode, "colors": image.getpalette(mode)}


class ImageSerializer(Serializer):
    """`PIL.Image.Image` in any mode: pixels, mode and size come back exactly.

    PNG (``image.png``) for the modes PNG holds losslessly, with the palette and the ``transparency`` entry of
    ``image.info`` kept; the raw pixel bytes (``image.raw``, ``Image.frombytes(mode, size, data)``) for the
    others, with the palette of a ``PA`` image in the metadata. Other ``info`` entries (EXIF, DPI) and the
    encoding of the file an image was opened from are not kept: what is stored is the decoded image.
    """

    PLUGIN_NAME = "pil.image"
    TYPES = ("PIL.Image.Image",)
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        meta: dict[str, Any] = {"mode": value.mode, "size": list(value.size)}
        if value.mode in PNG_MODES:
            options: dict[str, Any] = {"compress_level": 6}
            if "transparency" in value.info:
                options["transparency"] = value.info["transparency"]
            value.save(directory / "image.png", format="PNG", **options)
            return {**meta, "format": "png"}
        (directory / "image.raw").write_bytes(value.tobytes())
        palette = _palette(value)
        if palette is not None:
            meta["palette"] = palette
        return {**meta, "format": "raw"}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        from PIL import Image

        mode, size = meta["mode"], tuple(meta["size"])
        if meta.get("format") == "png":
            with Image.open(directory / "image.png") as f:
                image = f.copy()  # reads the pixels and lets the file go
            if mode == "I;16" and image.mode == "I":  # older Pillow reads 16-bit grey PNG as 32-bit "I"
                image = image.convert("I;16")
        else:
            image = Image.frombytes(mode, size, (directory / "image.raw").read_bytes())
            palette = meta.get("palette")
            if palette is not None:
                image.putpalette(palette["colors"], palette["mode"])
        if image.mode != mode or image.size != size:
            raise ResultCorruptedError(
                f"the image stored at {directory} reads back as {image.mode} {image.size}, "
                f"not {mode} {size} as recorded"
            )
        return image


class ImageHasher(Hasher):
    """`PIL.Image.Image` as a task argument (a mask, a small template), by mode, size, pixels and palette.

    Images whose pixels take more than `MAX_HASHED_PIXELS_BYTES` are refused: make them a task's output.
    """

    PLUGIN_NAME = "pil"
    TYPES = ("PIL.Image.Image",)

    def reduce(self, value: Any) -> Any:
        pixels = value.tobytes()
        if len(pixels) > MAX_HASHED_PIXELS_BYTES:
            raise UnhashableArgumentError(
                f"a {value.mode} image of {value.size[0]}x{value.size[1]} pixels is too large to be a task argument "
                f"(over {MAX_HASHED_PIXELS_BYTES} bytes); load it in a Task and pass that task instead"
            )
        palette = _palette(value)
        return (value.mode, tuple(value.size), pixels, None if palette is None else tuple(palette["colors"]))
