"""misen serializers for Plotly figures and Altair charts (their JSON specs), and `write_html` to look at one."""

from __future__ import annotations

from misen_serializers_charts.serializer import write_html

__all__ = ["write_html"]
