"""Previews of NumPy results for ``misen report``: shape, dtype and range, never the values themselves."""

from __future__ import annotations

import numpy as np
from misen.preview import Preview
from misen.serializer import preview_value
from misen_serializers_numpy.serializer import NDArraySerializer


def test_an_array_previews_as_shape_dtype_and_range() -> None:
    value = np.arange(12, dtype=np.float64).reshape(3, 4)
    assert preview_value(value) == Preview.text("ndarray shape=(3, 4) dtype=float64 min=0.0 max=11.0")


def test_nans_are_left_out_of_the_range_and_odd_arrays_still_preview() -> None:
    assert NDArraySerializer().preview(np.array([np.nan, 2.0, -1.5])) == Preview.text(
        "ndarray shape=(3,) dtype=float64 min=-1.5 max=2.0"
    )
    assert NDArraySerializer().preview(np.array([np.nan])) == Preview.text("ndarray shape=(1,) dtype=float64")
    assert NDArraySerializer().preview(np.zeros((0, 5), dtype=np.int32)) == Preview.text(
        "ndarray shape=(0, 5) dtype=int32"
    )
    assert NDArraySerializer().preview(np.array(["a", "b"])) == Preview.text("ndarray shape=(2,) dtype=<U1")


def test_a_dict_of_arrays_previews_as_a_table_of_its_keys() -> None:
    preview = preview_value({"x_train": np.ones((5, 2)), "n": 5})
    assert preview is not None and preview.kind == "html"
    assert "ndarray shape=(5, 2) dtype=float64 min=1.0 max=1.0" in str(preview.data)
