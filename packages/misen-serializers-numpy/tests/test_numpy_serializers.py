"""misen-serializers-numpy: arrays (memory-mapped loads), scalars, dtypes, containers of arrays, hashers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")

from misen.errors import ResultCorruptedError, UnhashableArgumentError  # noqa: E402
from misen.hashing import hash_value  # noqa: E402
from misen.serializer import Serializer, load_result, save_result, serializer_for  # noqa: E402
from misen.testing import SerializerContract  # noqa: E402
from misen_serializers_numpy.hashers import MAX_ARRAY_BYTES  # noqa: E402
from misen_serializers_numpy.serializer import DtypeSerializer, NDArraySerializer, ScalarSerializer  # noqa: E402


def roundtrip(
    value: Any, tmp_path: Path, *, mmap: bool = True, name: str = "r"
) -> tuple[Any, dict[str, Any]]:
    _, manifest = save_result(value, tmp_path / name)
    return load_result(tmp_path / name, mmap=mmap), manifest


def assert_same_array(a: Any, b: Any) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


class TestArrayContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return NDArraySerializer()

    @pytest.fixture
    def values(self) -> list[Any]:
        return [
            np.arange(10_000, dtype=np.float32).reshape(100, 100),
            np.asfortranarray(np.ones((3, 4))),
            np.array(5),
            np.zeros(0, dtype="i8"),
            np.array([("a", 1.5)], dtype=[("name", "U3"), ("v", "f8")]),
            np.arange(12)[::3],
        ]

    def assert_equal(self, a: Any, b: Any) -> None:
        assert_same_array(a, b)


class TestScalarContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return ScalarSerializer()

    @pytest.fixture
    def values(self) -> list[Any]:
        return [
            np.float32(1.5),
            np.int8(-3),
            np.bool_(True),
            np.datetime64("2024-01-02T03:04", "m"),
            np.str_("hé"),
        ]

    def assert_equal(self, a: Any, b: Any) -> None:
        assert type(a) is type(b) and a == b


class TestDtypeContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return DtypeSerializer()

    @pytest.fixture
    def values(self) -> list[Any]:
        return [np.dtype("f4"), np.dtype(">i2"), np.dtype([("a", "u1"), ("b", "f8", (2,))])]


def test_large_array_loads_memory_mapped_copy_on_write(tmp_path: Path) -> None:
    value = np.random.default_rng(0).standard_normal((512, 256))
    out, manifest = roundtrip(value, tmp_path)
    assert manifest["serializer"] == "numpy.ndarray" and list(manifest["files"]) == ["array.npy"]
    assert isinstance(out, np.memmap) and out.filename is not None
    assert_same_array(out, value)
    out[0, 0] = 42.0  # copy-on-write: the stored result is untouched
    again = load_result(tmp_path / "r")
    assert again[0, 0] == value[0, 0]


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.arange(2**21, dtype="f8"),  # 16 MiB, C order
        lambda: np.asfortranarray(np.arange(2**21, dtype=">i4").reshape(1024, 2048)),
        lambda: np.arange(2**21, dtype="i8").astype("datetime64[ns]"),
        lambda: np.zeros(2**20, dtype=[("a", "<f4"), ("b", "u1", (7,))]),
        lambda: np.arange(2**22, dtype="f4").reshape(2048, 2048)[:, ::2],  # not contiguous: plain np.save
    ],
)
def test_large_arrays_checksummed_while_written(make: Any, tmp_path: Path) -> None:
    from misen.serializer import check_result, file_digest

    value = make()
    _, manifest = save_result(value, tmp_path / "r")
    path = tmp_path / "r" / "array.npy"
    assert manifest["files"]["array.npy"]["xxh3"] == file_digest(path)
    check_result(tmp_path / "r", full=True)
    assert_same_array(np.load(path, allow_pickle=False), value)
    loaded = np.load(path, mmap_mode="r")
    assert (loaded.flags.c_contiguous, loaded.flags.f_contiguous) == (
        value.flags.c_contiguous or not value.flags.f_contiguous,
        value.flags.f_contiguous,
    )


def test_load_without_mmap_reads_into_memory(tmp_path: Path) -> None:
    value = np.arange(100_000)
    out, _ = roundtrip(value, tmp_path, mmap=False)
    assert type(out) is np.ndarray and out.flags.writeable
    assert_same_array(out, value)


def test_saved_file_is_a_plain_npy(tmp_path: Path) -> None:
    value = np.arange(6, dtype=">u2").reshape(2, 3)
    save_result(value, tmp_path / "r")
    assert_same_array(np.load(tmp_path / "r" / "array.npy", allow_pickle=False), value)


def test_a_loaded_memmap_result_stores_again_as_an_array(tmp_path: Path) -> None:
    first, _ = roundtrip(np.arange(10_000.0), tmp_path, name="a")
    assert isinstance(first, np.memmap)
    second, manifest = roundtrip(first, tmp_path, name="b")
    assert manifest["serializer"] == "numpy.ndarray"
    assert_same_array(second, np.arange(10_000.0))


def test_object_arrays_use_pickle_only_for_that_format(tmp_path: Path) -> None:
    value = np.array([{"a": 1}, [1, 2], None], dtype=object)
    out, manifest = roundtrip(value, tmp_path)
    assert manifest["meta"]["object"] is True
    assert out.dtype == object and list(out) == list(value)
    save_result(np.arange(3), tmp_path / "plain")
    with pytest.raises(ValueError):  # plain arrays are never loaded with allow_pickle
        np.load(tmp_path / "r" / "array.npy", allow_pickle=False)


def test_subclasses_are_declined_and_keep_their_type(tmp_path: Path) -> None:
    masked = np.ma.masked_array([1, 2, 3], mask=[0, 1, 0])
    out, manifest = roundtrip(masked, tmp_path)
    assert manifest["serializer"] == "pickle"
    assert isinstance(out, np.ma.MaskedArray) and out.mask.tolist() == [False, True, False]


def test_dict_of_arrays_keeps_each_array_as_npy(tmp_path: Path) -> None:
    value = {
        (0.001, 256): {"weights": np.ones((300, 300)), "acc": np.float64(0.9)},
        (0.01, 512): {"weights": np.zeros(5, dtype="i4"), "acc": np.float64(0.8)},
        "names": ["a", "b"],
    }
    out, manifest = roundtrip(value, tmp_path)
    assert manifest["serializer"] == "container"
    assert [leaf["serializer"] for leaf in manifest["meta"]["leaves"]] == ["numpy.ndarray", "numpy.ndarray"]
    assert not any(name.endswith("value.pkl") for name in manifest["files"]), "no array is pickled"
    assert list(out) == list(value)
    assert isinstance(out[(0.001, 256)]["weights"], np.memmap)
    assert_same_array(out[(0.001, 256)]["weights"], value[(0.001, 256)]["weights"])
    assert type(out[(0.01, 512)]["acc"]) is np.float64 and out[(0.01, 512)]["acc"] == 0.8
    assert out["names"] == ["a", "b"]


def test_list_of_scalars_stays_one_pickle(tmp_path: Path) -> None:
    value = [np.float32(1), np.int64(2), np.dtype("f8")]
    out, manifest = roundtrip(value, tmp_path)
    assert manifest["serializer"] == "pickle" and out == value


def test_newer_numpy_format_version_is_not_misread(tmp_path: Path) -> None:
    save_result(np.arange(3), tmp_path / "r")
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    manifest["version"] = NDArraySerializer.FORMAT_VERSION + 1
    (tmp_path / "r" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ResultCorruptedError):
        load_result(tmp_path / "r")


def test_registry_dispatch() -> None:
    assert serializer_for(np.arange(3)).PLUGIN_NAME == "numpy.ndarray"
    assert serializer_for(np.float16(1)).PLUGIN_NAME == "numpy.scalar"
    assert serializer_for(np.dtype("f8")).PLUGIN_NAME == "numpy.dtype"


# --- hashers -------------------------------------------------------------------------------------------------------


def test_dtypes_and_scalars_hash_by_value_and_type() -> None:
    assert hash_value(np.dtype("f4")) == hash_value(np.dtype(np.float32))
    assert hash_value(np.dtype("<f4")) != hash_value(np.dtype(">f4"))
    assert hash_value(np.float64(1.0)) != hash_value(1.0)
    assert hash_value(np.float64(1.0)) != hash_value(np.float32(1.0))
    assert hash_value(np.int64(3)) == hash_value(np.int64(3))
    assert hash_value({"dtype": np.dtype("i8")}) != hash_value({"dtype": np.dtype("i4")})


def test_hash_digests_are_pinned() -> None:
    # the identity of a task with these arguments must never change between releases, processes or machines
    assert hash_value(np.dtype("<f8")) == "527d13b228f09090cf89a3e051179abd"
    assert hash_value(np.int32(7)) == "38c49fc589d1c5fc41c7c3310234ec54"
    assert hash_value(np.arange(3, dtype="<i8")) == "13fdda739dfb1691e4c0ef38965f633d"


def test_small_arrays_hash_large_and_object_arrays_are_refused() -> None:
    a = np.linspace(0, 1, 5)
    assert hash_value(a) == hash_value(np.linspace(0, 1, 5))
    assert hash_value(a) != hash_value(a.astype("f4"))
    assert hash_value(a.reshape(5, 1)) != hash_value(a)
    assert hash_value(np.asfortranarray(np.ones((2, 3)))) == hash_value(np.ones((2, 3)))
    with pytest.raises(UnhashableArgumentError, match="too large to be a task argument"):
        hash_value(np.zeros(MAX_ARRAY_BYTES // 8 + 1))
    with pytest.raises(UnhashableArgumentError, match="object array"):
        hash_value(np.array([None, 1], dtype=object))


def test_registering_imports_no_numpy() -> None:
    code = (
        "import sys, misen.session as p\n"
        "import misen_serializers_numpy.hooks\n"
        "p.registry().serializers(); p.registry().hashers()\n"
        "from misen.hashing import hash_value; hash_value({'a': 1})\n"
        "assert 'numpy' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# --- scipy.sparse --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt", ["csr_matrix", "csc_array", "coo_array", "lil_matrix", "dok_array", "bsr_matrix"]
)
def test_scipy_sparse_keeps_format_and_kind(fmt: str, tmp_path: Path) -> None:
    sp = pytest.importorskip("scipy.sparse")
    dense = np.zeros((6, 4), dtype="f4")
    dense[1, 2], dense[5, 0] = 3.5, -1.0
    value = getattr(sp, fmt)(dense)
    out, manifest = roundtrip(value, tmp_path)
    assert manifest["serializer"] == "scipy.sparse" and list(manifest["files"]) == ["sparse.npz"]
    assert type(out) is type(value) and out.dtype == value.dtype and out.shape == value.shape
    np.testing.assert_array_equal(out.toarray(), dense)


def test_dict_of_sparse_matrices_keeps_each_as_npz(tmp_path: Path) -> None:
    sp = pytest.importorskip("scipy.sparse")
    value = {"adj": sp.eye(5, format="csr"), "dok": sp.dok_array(np.eye(3)), "n": 5}
    out, manifest = roundtrip(value, tmp_path)
    # a dok matrix is a dict subclass, yet a leaf: its own serializer claims it
    assert [leaf["serializer"] for leaf in manifest["meta"]["leaves"]] == ["scipy.sparse", "scipy.sparse"]
    assert (out["adj"] != value["adj"]).nnz == 0 and out["n"] == 5
    assert type(out["dok"]) is type(value["dok"]) and (out["dok"].toarray() == np.eye(3)).all()


# --- end to end ----------------------------------------------------------------------------------------------------

_PROJECT_SCRIPT = """
import numpy as np
from misen import Task, meta
from misen.runner import run

@meta(id="NPYSWEEP01", cache=True)
def train(lr: float, dim: int) -> dict:
    return {"weights": np.full((dim, 8), lr), "acc": np.float64(1 - lr), "history": [lr, lr / 2]}

@meta(id="NPYPLOT001", cache=True)
def summarize(runs: dict) -> np.ndarray:
    return np.array([runs[k]["weights"].sum() for k in sorted(runs)])

runs = {(lr, dim): Task(train, lr=lr, dim=dim).T for lr in (0.1, 0.2) for dim in (64, 128)}
top = Task(summarize, runs=runs)
report = run(top, executor="in-process", workspace="disk")
assert report.ok, report
out = top.result(workspace="disk")
one = Task(train, lr=0.1, dim=64).result(workspace="disk")
import json
print(json.dumps([type(out).__name__, out.tolist(), type(one["weights"]).__name__, type(one["acc"]).__name__,
                  one["history"]]))
"""


def test_a_sweep_of_array_dicts_runs_and_stores_npy_files(tmp_path: Path) -> None:
    pytest.importorskip("misen_workspace_disk")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "npyproj"\nversion = "0"\n')
    (tmp_path / "sweep.py").write_text(_PROJECT_SCRIPT)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("MISEN_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    proc = subprocess.run(
        [sys.executable, "sweep.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kind, sums, weights_type, acc_type, history = json.loads(proc.stdout.strip().splitlines()[-1])
    assert kind == "ndarray"  # a few bytes are read, not mapped
    assert sums == pytest.approx([51.2, 102.4, 102.4, 204.8])
    assert (weights_type, acc_type, history) == ("memmap", "float64", [0.1, 0.05])
    manifests = [json.loads(p.read_text()) for p in (tmp_path / ".misen").rglob("manifest.json")]
    serializers = sorted(m["serializer"] for m in manifests)
    assert serializers == ["container"] * 4 + ["numpy.ndarray"]
    assert all(
        [leaf["serializer"] for leaf in m["meta"]["leaves"]] == ["numpy.ndarray"]
        for m in manifests
        if m["serializer"] == "container"
    )
