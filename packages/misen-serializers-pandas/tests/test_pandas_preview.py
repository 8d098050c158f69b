"""Previews of pandas results for ``misen report``: a frame's size and its first rows as an HTML table."""

from __future__ import annotations

import pandas as pd
from misen.serializer import preview_value


def test_a_frame_previews_as_its_head_with_every_cell_escaped() -> None:
    frame = pd.DataFrame({"name": [f"<r{i}>" for i in range(25)], "score": range(25)})
    preview = preview_value(frame)
    assert preview is not None and preview.kind == "html"
    html = str(preview.data)
    assert html.startswith("<p>25 rows × 2 columns</p><table")
    assert "&lt;r9&gt;" in html and "&lt;r10&gt;" not in html  # ten rows, escaped
    assert "<r0>" not in html


def test_a_series_previews_like_a_one_column_frame() -> None:
    preview = preview_value(pd.Series([1.5, 2.5], name="loss"))
    assert preview is not None and preview.kind == "html"
    assert "<p>2 rows × 1 columns</p>" in str(preview.data) and "loss" in str(preview.data)
