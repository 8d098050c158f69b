"""Result previews: a short look at a value (a line of text, an HTML table or a PNG picture) for reports.

`misen.Serializer.preview` returns a `Preview`; its default, `default_preview`, covers the standard library's
values and anything that draws itself (matplotlib figures, PIL images, Plotly and Altair charts when their
image export is installed). Serializers of other libraries override it (NumPy arrays as shape, dtype and
range; DataFrames as their head). `misen.serializer.preview_value` is what callers use: it never raises.
"""

from __future__ import annotations

import io
import os
import pprint
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import attrs

__all__ = ["MAX_TEXT", "Preview", "default_preview", "short_text"]

#: The longest text preview kept (longer ones end with ``…``).
MAX_TEXT = 1200
_IMAGE_SUFFIXES = MappingProxyType(
    {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif", ".svg": "svg+xml", ".webp": "webp"}
)
_MAX_IMAGE_BYTES = 4 * 1024 * 1024


@attrs.frozen
class Preview:
    """A preview of one value.

    Attributes:
        kind: ``"text"`` (shown preformatted), ``"html"`` (a fragment such as a ``<table>``; shown as is, so only
            build it from escaped text) or ``"image"`` (``data`` holds the picture's bytes).
        data: The text, the HTML fragment, or the image bytes.
        mime: The image's media type (``"image/png"``) for ``kind="image"``.
    """

    kind: str
    data: str | bytes
    mime: str = ""

    @classmethod
    def text(cls, text: str) -> Preview:
        """A plain-text preview (cut to `MAX_TEXT` characters)."""
        return cls("text", short_text(text))

    @classmethod
    def html(cls, fragment: str) -> Preview:
        """An HTML fragment (a table, a list); the caller has escaped every text in it."""
        return cls("html", fragment)

    @classmethod
    def png(cls, data: bytes) -> Preview:
        """A PNG picture."""
        return cls("image", bytes(data), "image/png")


def short_text(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, ending with ``…`` when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def default_preview(value: Any, inner: Callable[[Any], Preview | None] | None = None) -> Preview | None:
    """A preview of standard-library values and of objects that can draw themselves as PNG.

    Scalars and small containers are shown as text; a string that names an existing image file (a task that
    returns the path of its plot) is shown as that picture; a dict holding arrays or frames is a table of its
    keys with a one-line preview of each value; matplotlib figures, PIL images and Plotly/Altair charts (with
    their PNG export installed) are pictures. ``inner`` previews the values inside a dict (default: this
    function; `misen.serializer.preview_value` asks each value's own serializer).
    """
    if isinstance(value, str):
        image = image_file(value)
        return image if image is not None else Preview.text(value)
    if isinstance(value, bytes | bytearray):
        if bytes(value[:8]) == b"\x89PNG\r\n\x1a\n":
            return Preview.png(bytes(value))
        return Preview.text(f"{len(value):,} bytes: {bytes(value[:48])!r}{'…' if len(value) > 48 else ''}")
    picture = _picture(value)
    if picture is not None:
        return picture
    if isinstance(value, dict) and value and not _plain(value):
        return dict_table(value, inner=inner)
    return Preview.text(pprint.pformat(value, width=90, compact=True, sort_dicts=False))


def image_file(text: str) -> Preview | None:
    """The picture at path ``text`` if it names an existing image file of a known kind, else ``None``."""
    if len(text) > 4096 or "\n" in text:
        return None
    suffix = os.path.splitext(text)[1].lower()
    mime = _IMAGE_SUFFIXES.get(suffix)
    if mime is None:
        return None
    try:
        if not os.path.isfile(text) or os.path.getsize(text) > _MAX_IMAGE_BYTES:
            return None
        with open(text, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return Preview("image", data, f"image/{mime}")


def dict_table(
    value: dict[Any, Any], limit: int = 30, inner: Callable[[Any], Preview | None] | None = None
) -> Preview:
    """A two-column HTML table: each key and a one-line preview of its value (by ``inner``)."""
    inner = inner or _safe_default
    rows = []
    for i, (k, v) in enumerate(value.items()):
        if i == limit:
            rows.append(f"<tr><td colspan=2>… {len(value) - limit} more</td></tr>")
            break
        shown_preview = inner(v)
        if shown_preview is None or shown_preview.kind != "text":
            shown = type(v).__name__ if shown_preview is None else f"{type(v).__name__} ({shown_preview.kind})"
        else:
            shown = short_text(str(shown_preview.data).replace("\n", " "), 160)
        rows.append(f"<tr><th>{_escape(repr(k))}</th><td>{_escape(shown)}</td></tr>")
    return Preview.html(f"<table class='kv'>{''.join(rows)}</table>")


def _escape(text: str) -> str:
    import html  # here: only a preview shown as a table needs it, and every start would pay for it

    return html.escape(text)


def _safe_default(value: Any) -> Preview | None:
    try:
        return default_preview(value)
    except Exception:
        return None


def _plain(value: Any, depth: int = 0) -> bool:
    if value is None or isinstance(value, bool | int | float | complex | str | bytes):
        return True
    if depth > 6:
        return False
    if isinstance(value, dict):
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return all(_plain(v, depth + 1) for v in value)
    return False


def _picture(value: Any) -> Preview | None:
    """PNG bytes of a matplotlib figure, a PIL image or a Plotly/Altair chart; ``None`` for anything else."""
    module = type(value).__module__ or ""
    buf = io.BytesIO()
    if module.startswith("matplotlib") and hasattr(value, "savefig"):
        value.savefig(buf, format="png", dpi=80)
        return Preview.png(buf.getvalue())
    if module.startswith("PIL") and hasattr(value, "save") and hasattr(value, "thumbnail"):
        image = value.copy()
        image.thumbnail((640, 640))
        image.save(buf, format="PNG")
        return Preview.png(buf.getvalue())
    if module.startswith("plotly") and hasattr(value, "to_image"):
        try:
            return Preview.png(value.to_image(format="png"))  # needs kaleido
        except Exception:
            return Preview.text(f"Plotly figure ({len(getattr(value, 'data', ()))} traces; install kaleido for a picture)")
    if module.startswith("altair") and hasattr(value, "save"):
        try:
            value.save(buf, format="png")  # needs vl-convert
            return Preview.png(buf.getvalue())
        except Exception:
            return Preview.text("Altair chart (install vl-convert-python for a picture)")
    return None
