"""misen serializer and argument hasher for SymPy expressions and matrices, stored as ``srepr`` text."""

from __future__ import annotations

__all__: list[str] = []
