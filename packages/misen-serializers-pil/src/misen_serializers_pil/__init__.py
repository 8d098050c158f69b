"""misen serializer and argument hasher for PIL (Pillow) images: PNG where it is lossless, raw pixels otherwise."""

from __future__ import annotations

__all__: list[str] = []
