"""The built-in stdlib serializers and hashers: pickle/dill, bytes, str, containers with leaves, format stability."""

from __future__ import annotations

import collections
import dataclasses
import fractions
import json
import re
import subprocess
import sys
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import pytest
from misen import cache, hookimpl
from misen.errors import MisenError, ResultCorruptedError
from misen.hashing import hash_value
from misen.serializer import LoadContext, SaveContext, Serializer, load_result, save_result, serializer_for
from misen.stdlib import BYTES_LEAF_MIN, BytesSerializer, PickleSerializer, StrSerializer
from misen.testing import SerializerContract
from misen.testing.fixtures import start_session


class Blob:
    """A type with its own (test) serializer, standing in for an array in containers."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Blob) and other.data == self.data

    def __hash__(self) -> int:
        return hash(self.data)


class BlobSerializer(Serializer):
    PLUGIN_NAME = "test.blob"
    TYPES = (f"{Blob.__module__}.{Blob.__qualname__}",)
    FORMAT_VERSION = 2
    saved: ClassVar[list[int]] = []
    seen_versions: ClassVar[list[int]] = []
    fail = False

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        if BlobSerializer.fail:
            raise OSError("disk on fire")
        BlobSerializer.saved.append(len(value.data))
        (directory / "blob.bin").write_bytes(value.data)
        return {"n": len(value.data)}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        BlobSerializer.seen_versions.append(ctx.format_version)
        data = (directory / "blob.bin").read_bytes()
        if ctx.format_version == 1:  # version 1 stored the bytes reversed
            data = data[::-1]
        return Blob(data)


class _Plugin:
    @staticmethod
    @hookimpl
    def misen_add_serializers() -> list[Any]:
        return [BlobSerializer]


@pytest.fixture(autouse=True)
def builtins_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only the built-ins and the Blob plugin, whatever else the environment has installed."""
    monkeypatch.setenv("MISEN_NO_ENTRY_POINTS", "1")
    start_session(_Plugin)
    BlobSerializer.saved.clear()
    BlobSerializer.seen_versions.clear()
    BlobSerializer.fail = False
    yield
    monkeypatch.delenv("MISEN_NO_ENTRY_POINTS")
    start_session()


def roundtrip(value: Any, tmp_path: Path, name: str = "r") -> tuple[Any, dict[str, Any]]:
    _, manifest = save_result(value, tmp_path / name)
    return load_result(tmp_path / name), manifest


@dataclasses.dataclass(frozen=True)
class Metrics:
    acc: float
    loss: float


@dataclasses.dataclass
class Holder:
    name: str
    payload: Any


class Point(NamedTuple):
    x: int
    y: int


# --- pickle ------------------------------------------------------------------------------------------------------


def test_plain_sweep_dict_with_tuple_keys_is_one_pickle(tmp_path: Path) -> None:
    value = {(0.001, 256): Metrics(0.9, 0.1), (0.01, 512): Metrics(0.8, 0.25)}
    out, manifest = roundtrip(value, tmp_path)
    assert out == value
    assert list(out) == list(value) and all(type(k) is tuple for k in out)
    assert manifest["serializer"] == "pickle" and manifest["meta"] == {"engine": "pickle"}
    assert list(manifest["files"]) == ["value.pkl"]


def test_pickle_falls_back_to_dill_and_says_so(tmp_path: Path) -> None:
    def make_adder(n: int) -> Any:
        return lambda x: x + n

    out, manifest = roundtrip(make_adder(3), tmp_path)
    assert manifest["serializer"] == "pickle" and manifest["meta"]["engine"] == "dill"
    assert out(4) == 7


def test_what_neither_pickle_nor_dill_can_store_is_a_clear_error(tmp_path: Path) -> None:
    gen = (i for i in range(3))
    with pytest.raises(MisenError, match=r"cannot store a result of type builtins\.generator"):
        save_result(gen, tmp_path / "r")


def test_unknown_pickle_engine_is_refused(tmp_path: Path) -> None:
    save_result([1], tmp_path / "r")
    with pytest.raises(MisenError, match="unknown pickle engine"):
        PickleSerializer().load(tmp_path / "r", {"engine": "marshal"}, LoadContext())


# --- bytes and str -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [bytes, bytearray])
def test_bytes_are_one_raw_file(kind: type, tmp_path: Path) -> None:
    value = kind(range(256)) * 12_345
    out, manifest = roundtrip(value, tmp_path)
    assert type(out) is kind and out == value
    assert manifest["serializer"] == "bytes"
    assert manifest["files"] == {
        "value.bin": {"size": len(value), "xxh3": manifest["files"]["value.bin"]["xxh3"]}
    }
    assert (tmp_path / "r" / "value.bin").read_bytes() == bytes(value)


def test_large_bytes_are_checksummed_while_written(tmp_path: Path) -> None:
    from misen.serializer import check_result, file_digest
    from misen.stdlib import OVERLAP_MIN_BYTES

    value = bytes(range(256)) * (OVERLAP_MIN_BYTES // 256 + 3)
    out, manifest = roundtrip(value, tmp_path)
    assert manifest["files"]["value.bin"]["xxh3"] == file_digest(tmp_path / "r" / "value.bin")
    check_result(tmp_path / "r", full=True)
    assert out == value


def test_bytes_subclass_is_pickled_to_keep_its_type(tmp_path: Path) -> None:
    class Tagged(bytes):
        pass

    assert serializer_for(Tagged(b"x")).PLUGIN_NAME != "bytes"


def test_str_is_utf8_text_and_keeps_lone_surrogates(tmp_path: Path) -> None:
    value = "naïve ✓ \udc80 end"
    out, manifest = roundtrip(value, tmp_path)
    assert out == value and manifest["serializer"] == "str"
    assert (tmp_path / "r" / "value.txt").read_bytes().startswith("naïve".encode())


class TestBytesContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return BytesSerializer()

    @pytest.fixture
    def values(self) -> list[Any]:
        return [b"", b"abc", bytearray(b"\x00" * 1000)]


class TestStrContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return StrSerializer()

    @pytest.fixture
    def values(self) -> list[Any]:
        return ["", "hello", "ü" * 1000]


# --- containers ----------------------------------------------------------------------------------------------------


def test_dict_of_leaves_stores_each_leaf_by_its_own_serializer(tmp_path: Path) -> None:
    a, b = Blob(b"a" * 10), Blob(b"b" * 20)
    value = {(0.1, 2): a, (0.2, 4): [b, 3.5, "x"], "meta": {"n": 1}}
    out, manifest = roundtrip(value, tmp_path)
    assert out == value
    assert list(out) == list(value)
    assert manifest["serializer"] == "container"
    assert [leaf["serializer"] for leaf in manifest["meta"]["leaves"]] == ["test.blob", "test.blob"]
    assert sorted(BlobSerializer.saved) == [10, 20]
    assert set(manifest["files"]) == {"skeleton.pkl", "leaves/0/blob.bin", "leaves/1/blob.bin"}


def test_container_keeps_types_nesting_and_shared_leaves(tmp_path: Path) -> None:
    shared = Blob(b"s" * 5)
    value = [
        collections.OrderedDict([("z", shared), ("a", 1)]),
        Point(1, 2),
        (shared, Holder("h", Blob(b"inner"))),
        collections.defaultdict(list, {"k": [shared]}),
    ]
    out, manifest = roundtrip(value, tmp_path)
    assert out == value
    assert type(out[0]) is collections.OrderedDict and list(out[0]) == ["z", "a"]
    assert (
        type(out[1]) is Point and type(out[3]) is collections.defaultdict and out[3].default_factory is list
    )
    assert isinstance(out[2][1], Holder)
    assert out[0]["z"] is out[2][0] is out[3]["k"][0], "one object saved once stays one object"
    assert len(manifest["meta"]["leaves"]) == 2


def test_dataclass_holding_a_leaf_uses_the_container_path(tmp_path: Path) -> None:
    value = Holder("run", {"weights": Blob(b"w" * 100)})
    out, manifest = roundtrip(value, tmp_path)
    assert manifest["serializer"] == "container"
    assert out == value


def test_large_bytes_are_leaves_small_ones_stay_inline(tmp_path: Path) -> None:
    big = bytes(BYTES_LEAF_MIN)
    out, manifest = roundtrip({"big": big, "small": b"tiny"}, tmp_path)
    assert out == {"big": big, "small": b"tiny"}
    assert [leaf["serializer"] for leaf in manifest["meta"]["leaves"]] == ["bytes"]
    assert manifest["files"]["leaves/0/value.bin"]["size"] == BYTES_LEAF_MIN


def test_container_of_plain_values_is_one_pickle(tmp_path: Path) -> None:
    value = {"a": [1, 2.5, None, "s", b"b"], ("t", 1): (Point(0, 0), Metrics(1.0, 0.0))}
    out, manifest = roundtrip(value, tmp_path)
    assert out == value and manifest["serializer"] == "pickle"


def test_container_with_unpicklable_part_uses_dill_once(tmp_path: Path) -> None:
    value = {"fn": lambda x: x * 2, "blob": Blob(b"q")}
    out, manifest = roundtrip(value, tmp_path)
    assert manifest["serializer"] == "container" and manifest["meta"]["engine"] == "dill"
    assert out["fn"](4) == 8 and out["blob"] == Blob(b"q")
    assert len(manifest["meta"]["leaves"]) == 1 and set(manifest["files"]) == {
        "skeleton.pkl",
        "leaves/0/blob.bin",
    }


def test_a_failing_leaf_serializer_is_reported_not_retried(tmp_path: Path) -> None:
    BlobSerializer.fail = True
    with pytest.raises(OSError, match="disk on fire"):
        save_result({"x": Blob(b"1")}, tmp_path / "r")


def test_long_plain_list_with_one_leaf_at_the_end(tmp_path: Path) -> None:
    value = [float(i) for i in range(100_000)] + [Blob(b"end")]
    out, manifest = roundtrip(value, tmp_path)
    assert out == value and manifest["serializer"] == "container"


# --- format stability ----------------------------------------------------------------------------------------------


def _rewrite_manifest(directory: Path, **changes: Any) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest.update(changes)
    (directory / "manifest.json").write_text(json.dumps(manifest))


def test_result_written_with_an_older_format_version_still_loads(tmp_path: Path) -> None:
    d = tmp_path / "r"
    d.mkdir()
    (d / "blob.bin").write_bytes(b"cba")  # what version 1 wrote
    save_result(Blob(b"ignored"), d)  # a real manifest; then pretend version 1 wrote it
    (d / "blob.bin").write_bytes(b"cba")
    _rewrite_manifest(d, version=1)
    assert load_result(d, verify=False) == Blob(b"abc")
    assert BlobSerializer.seen_versions == [1]


def test_newer_format_version_or_unknown_serializer_needs_recomputation(tmp_path: Path) -> None:
    save_result(Blob(b"x"), tmp_path / "newer")
    _rewrite_manifest(tmp_path / "newer", version=BlobSerializer.FORMAT_VERSION + 1)
    with pytest.raises(ResultCorruptedError, match="newer than the installed version"):
        load_result(tmp_path / "newer")

    save_result(Blob(b"x"), tmp_path / "unknown")
    _rewrite_manifest(tmp_path / "unknown", serializer="someone.elses")
    with pytest.raises(ResultCorruptedError, match=r"'someone\.elses', which is not installed"):
        load_result(tmp_path / "unknown")


def test_container_leaf_with_newer_format_needs_recomputation(tmp_path: Path) -> None:
    d = tmp_path / "r"
    save_result({"b": Blob(b"x")}, d)
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["meta"]["leaves"][0]["version"] = 99
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ResultCorruptedError, match="format version 99"):
        load_result(d)


def test_result_of_an_uninstalled_plugin_counts_as_not_cached(tmp_path: Path) -> None:
    from misen._builtin.memory import MemoryWorkspace
    from misen.errors import NotCachedError
    from misen.tasks import Task
    from misen.testing.tasks import add

    ws = MemoryWorkspace()
    task = Task(add, a=1, b=2)
    result_hash = cache.store(ws, Blob(b"x"))
    cache.link(ws, task, resolved="r-" + task.hash, result=result_hash)
    assert cache.load(ws, task) == Blob(b"x")
    start_session()  # the Blob plugin is gone
    with pytest.raises(NotCachedError, match="not installed"):
        cache.load(ws, task)


# --- hashers -------------------------------------------------------------------------------------------------------


def test_stdlib_hasher_covers_container_subclasses_and_small_types() -> None:
    assert hash_value(Point(1, 2)) != hash_value((1, 2))
    assert hash_value(Point(1, 2)) == hash_value(Point(1, 2))
    od = collections.OrderedDict([("a", 1), ("b", 2)])
    assert hash_value(od) != hash_value(collections.OrderedDict([("b", 2), ("a", 1)]))
    assert hash_value(collections.defaultdict(int, a=1)) == hash_value(collections.defaultdict(list, a=1))
    assert hash_value(collections.Counter("aab")) != hash_value({"a": 2, "b": 1})
    assert hash_value(fractions.Fraction(1, 3)) != hash_value(fractions.Fraction(2, 3))
    assert hash_value(re.compile("a+", re.I)) != hash_value(re.compile("a+"))
    assert hash_value(zoneinfo.ZoneInfo("Europe/Berlin")) != hash_value(zoneinfo.ZoneInfo("UTC"))


def test_registering_imports_no_third_party_library() -> None:
    code = (
        "import sys, misen.session as p, tempfile, pathlib\n"
        "from misen.serializer import save_result, load_result\n"
        "p.registry().serializers(); p.registry().hashers()\n"
        "d = pathlib.Path(tempfile.mkdtemp()) / 'r'\n"
        "save_result({'a': [1, 2], 'b': b'x' * 10}, d); load_result(d)\n"
        "heavy = [m for m in ('numpy', 'pandas', 'torch', 'sklearn', 'pyarrow', 'polars', 'skops') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_missing_serializer_message_names_the_extra(tmp_path: Path) -> None:
    save_result(Blob(b"x"), tmp_path / "r")
    _rewrite_manifest(tmp_path / "r", serializer="torch.tensor")
    with pytest.raises(ResultCorruptedError, match=r'pip install "misen\[torch\]"'):
        load_result(tmp_path / "r")


def test_pydantic_models_hash_by_class_and_fields() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Optim(pydantic.BaseModel):
        name: str = "adam"
        lr: float = 1e-3

    class Config(pydantic.BaseModel):
        dim: int
        optim: Optim = Optim()

    assert hash_value(Config(dim=4)) == hash_value(Config(dim=4, optim=Optim()))
    assert hash_value(Config(dim=4)) != hash_value(Config(dim=8))
    assert hash_value(Config(dim=4)) != hash_value(Config(dim=4, optim=Optim(lr=0.1)))
    assert hash_value(Config(dim=4)) != hash_value({"dim": 4, "optim": {"name": "adam", "lr": 1e-3}})
