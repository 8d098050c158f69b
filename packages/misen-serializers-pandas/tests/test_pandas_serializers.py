"""misen-serializers-pandas: DataFrame/Series via Parquet (or pickle, said so), pyarrow tables, polars frames."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

import numpy as np  # noqa: E402
from misen.hashing import hash_value  # noqa: E402
from misen.serializer import Serializer, load_result, save_result, serializer_for  # noqa: E402
from misen.testing import SerializerContract  # noqa: E402
from misen_serializers_pandas.serializer import DataFrameSerializer, SeriesSerializer  # noqa: E402


def roundtrip(value: Any, tmp_path: Path, name: str = "r") -> tuple[Any, dict[str, Any]]:
    _, manifest = save_result(value, tmp_path / name)
    return load_result(tmp_path / name), manifest


def assert_frames(a: Any, b: Any) -> None:
    pd.testing.assert_frame_equal(
        a, b, check_exact=True, check_index_type=True, check_column_type=True, check_frame_type=True
    )
    assert a.attrs == b.attrs
    assert getattr(a.index, "freq", None) == getattr(b.index, "freq", None)


def rich_frame() -> Any:
    index = pd.MultiIndex.from_tuples([("a", 1), ("b", 2), ("c", 3)], names=["key", "n"])
    frame = pd.DataFrame(
        {
            "cat": pd.Categorical(["x", "y", "x"], categories=["y", "x"], ordered=True),
            "when": pd.date_range("2024-03-30", periods=3, freq="D", tz="Europe/Berlin"),
            "count": pd.array([1, None, 3], dtype="Int64"),
            "flag": pd.array([True, None, False], dtype="boolean"),
            "text": pd.array(["u", None, "w"], dtype="string"),
            "f32": np.array([1.5, np.nan, -0.0], dtype="f4"),
            "secs": np.array(["2024-01-01", "2024-01-02", "NaT"], dtype="datetime64[s]"),
        },
        index=index,
    )
    frame.attrs = {"source": "test", "version": 2}
    return frame


class TestDataFrameContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return DataFrameSerializer()

    @pytest.fixture
    def values(self) -> list[Any]:
        return [
            rich_frame(),
            pd.DataFrame(np.arange(12.0).reshape(4, 3)),
            pd.DataFrame({"x": [1, 2]}, index=pd.date_range("2020-01-01", periods=2, freq="h", name="t")),
            pd.DataFrame({"mixed": [1, "a", 2.5]}),
        ]

    def assert_equal(self, a: Any, b: Any) -> None:
        assert_frames(a, b)


class TestSeriesContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return SeriesSerializer()

    @pytest.fixture
    def values(self) -> list[Any]:
        return [
            pd.Series([1.0, 2.0], name="loss", index=pd.Index(["a", "b"], name="run")),
            pd.Series([1, 2, 3]),
            pd.Series(pd.Categorical(["a", "b"]), name=7),
            pd.Series([1, 2], name=("tuple", "name")),
        ]

    def assert_equal(self, a: Any, b: Any) -> None:
        pd.testing.assert_series_equal(a, b, check_exact=True, check_index_type=True)


def test_rich_frame_goes_to_parquet_and_keeps_everything(tmp_path: Path) -> None:
    value = rich_frame()
    out, manifest = roundtrip(value, tmp_path)
    assert manifest["serializer"] == "pandas.dataframe" and manifest["meta"]["format"] == "parquet"
    assert list(manifest["files"]) == ["frame.parquet"]
    assert_frames(out, value)
    assert isinstance(out.index, pd.MultiIndex) and out["cat"].cat.ordered
    assert str(out["when"].dt.tz) == "Europe/Berlin" and str(out["secs"].dtype) == "datetime64[s]"


def test_parquet_file_is_readable_by_other_tools(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    save_result(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), tmp_path / "r")
    table = pq.read_table(tmp_path / "r" / "frame.parquet")
    assert table.column("b").to_pylist() == ["x", "y"]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (pd.DataFrame({"o": [1, "a", 2.5]}), "object column 'o'"),
        (pd.DataFrame({"l": [[1, 2], [3]]}), "object column 'l'"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "duplicate column labels"),
        (pd.DataFrame({1: [1.0], "b": [2.0]}), "column labels that are not strings"),
        (pd.DataFrame({"c": [1 + 2j]}), "Parquet refused it"),
        (pd.DataFrame({"x": [1, 2]}, index=[1, "a"]), "object index"),
        (pd.DataFrame({"x": [1]}).set_flags(allows_duplicate_labels=False), "allows_duplicate_labels"),
    ],
)
def test_what_parquet_would_change_is_pickled_and_said_so(frame: Any, reason: str, tmp_path: Path) -> None:
    out, manifest = roundtrip(frame, tmp_path)
    assert manifest["meta"]["format"] == "pickle"
    assert reason in manifest["meta"]["reason"]
    assert_frames(out, frame)
    assert out.flags.allows_duplicate_labels == frame.flags.allows_duplicate_labels


def test_named_series_keeps_name_index_and_dtype(tmp_path: Path) -> None:
    value = pd.Series(pd.array([1, None], dtype="Int64"), name="count", index=pd.Index(["a", "b"], name="k"))
    out, manifest = roundtrip(value, tmp_path)
    assert manifest["serializer"] == "pandas.series" and manifest["meta"]["format"] == "parquet"
    pd.testing.assert_series_equal(out, value, check_exact=True)
    assert out.name == "count" and out.index.name == "k"


def test_subclass_is_declined(tmp_path: Path) -> None:
    class Frame(pd.DataFrame):
        @property
        def _constructor(self) -> type:
            return Frame

    assert serializer_for(Frame({"a": [1]})).PLUGIN_NAME != "pandas.dataframe"


def test_dict_of_frames_keeps_each_as_parquet(tmp_path: Path) -> None:
    value = {("train", 1): rich_frame(), ("test", 1): pd.Series([1.0], name="s"), "n": 3}
    out, manifest = roundtrip(value, tmp_path)
    assert manifest["serializer"] == "container"
    assert [leaf["serializer"] for leaf in manifest["meta"]["leaves"]] == [
        "pandas.dataframe",
        "pandas.series",
    ]
    assert_frames(out[("train", 1)], value[("train", 1)])
    pd.testing.assert_series_equal(out[("test", 1)], value[("test", 1)])
    assert out["n"] == 3


# --- pyarrow -------------------------------------------------------------------------------------------------------


def test_arrow_table_and_batch_round_trip_memory_mapped(tmp_path: Path) -> None:
    import pyarrow as pa

    table = pa.table({"a": [1, 2, 3], "b": ["x", None, "z"]}).replace_schema_metadata({"k": "v"})
    out, manifest = roundtrip(table, tmp_path)
    assert manifest["serializer"] == "pyarrow.table" and out.equals(table, check_metadata=True)
    batch = pa.record_batch({"a": [1.5]})
    out_batch, manifest = roundtrip(batch, tmp_path, "b")
    assert isinstance(out_batch, pa.RecordBatch) and out_batch.equals(batch)


# --- polars --------------------------------------------------------------------------------------------------------


def test_polars_frames_and_series(tmp_path: Path) -> None:
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame(
        {"a": [1, 2], "s": ["x", None], "c": pl.Series(["u", "v"], dtype=pl.Categorical), "l": [[1], [2, 3]]}
    )
    out, manifest = roundtrip(frame, tmp_path)
    assert manifest["serializer"] == "polars.dataframe" and manifest["meta"]["format"] == "ipc"
    assert out.equals(frame) and out.schema == frame.schema
    series = pl.Series("loss", [0.5, 0.25])
    out_s, _ = roundtrip(series, tmp_path, "s")
    assert isinstance(out_s, pl.Series) and out_s.name == "loss" and out_s.equals(series)


def test_polars_object_columns_are_pickled_and_said_so(tmp_path: Path) -> None:
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"o": pl.Series([{"k": 1}, None], dtype=pl.Object), "a": [1, 2]})
    out, manifest = roundtrip(frame, tmp_path)
    assert manifest["meta"]["format"] == "pickle" and manifest["meta"]["reason"] == "Object columns"
    assert (
        out.schema == frame.schema and out["o"].to_list() == [{"k": 1}, None] and out["a"].to_list() == [1, 2]
    )


# --- hashers -------------------------------------------------------------------------------------------------------


def test_pandas_scalars_hash_as_arguments() -> None:
    berlin = pd.Timestamp("2024-01-01 12:00", tz="Europe/Berlin")
    assert hash_value(berlin) == hash_value(pd.Timestamp("2024-01-01 12:00", tz="Europe/Berlin"))
    assert hash_value(berlin) != hash_value(berlin.tz_convert("UTC"))
    assert hash_value(pd.Timestamp("2024-01-01")) != hash_value(pd.Timestamp("2024-01-01 00:00:00.000000001"))
    assert hash_value(pd.Timedelta("1s")) != hash_value(pd.Timedelta("2s"))
    assert hash_value(pd.Period("2024-01", "M")) != hash_value(pd.Period("2024-01-01", "D"))
    assert hash_value(pd.Interval(0, 1)) != hash_value(pd.Interval(0, 1, closed="both"))
    assert hash_value(pd.NaT) == hash_value(pd.NaT)
    assert (
        hash_value(pd.Timestamp("2024-01-01")) == "9086fc3e37935d78dedfdfdb61bb2d00"
    )  # pinned: identities never change


def test_registering_imports_no_pandas() -> None:
    code = (
        "import sys, misen.session as p\n"
        "import misen_serializers_pandas.hooks\n"
        "p.registry().serializers(); p.registry().hashers()\n"
        "bad = [m for m in ('pandas', 'pyarrow', 'polars') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_arrow_table_with_per_chunk_dictionaries(tmp_path: Path) -> None:
    import pyarrow as pa

    column = pa.chunked_array(
        [pa.array(["x", "y"]).dictionary_encode(), pa.array(["z", "x"]).dictionary_encode()]
    )
    table = pa.table({"d": column, "n": [1, 2, 3, 4]})
    out, _ = roundtrip(table, tmp_path)
    assert out.column("d").to_pylist() == ["x", "y", "z", "x"] and out.column("n").to_pylist() == [1, 2, 3, 4]
    assert out.schema == table.schema
