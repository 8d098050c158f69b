"""The built-in `models.json` serializer: Pydantic models, msgspec structs and attrs instances as JSON with the
class's importable name; fields JSON cannot hold stored on their own; classes nobody can import pickled."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from misen.serializer import load_result, save_result, serializer_for
from misen.testing import SerializerContract

MODULE = textwrap.dedent(
    """
    from __future__ import annotations

    import datetime as dt
    from typing import Any

    import attrs


    @attrs.define
    class AttrsPoint:
        x: float
        y: float
        label: str = ""


    @attrs.frozen
    class AttrsRun:
        name: str
        point: AttrsPoint
        shape: tuple[int, ...]
        tags: list[str] = attrs.field(factory=list)
        extra: Any = None


    try:
        import pydantic
    except ImportError:
        pydantic = None

    if pydantic is not None:

        class Point(pydantic.BaseModel):
            x: float
            y: float

        class Run(pydantic.BaseModel):
            model_config = pydantic.ConfigDict(arbitrary_types_allowed=True)

            name: str
            when: dt.datetime
            points: list[Point]
            shape: tuple[int, int]
            scores: dict[str, float] = {}
            blob: Any = None

    try:
        from pydantic import v1 as pydantic_v1
    except ImportError:
        pydantic_v1 = None

    if pydantic_v1 is not None:

        class V1Point(pydantic_v1.BaseModel):
            x: float
            when: dt.date

    try:
        import msgspec
    except ImportError:
        msgspec = None

    if msgspec is not None:

        class MPoint(msgspec.Struct):
            x: float
            y: float

        class MRun(msgspec.Struct):
            name: str
            points: list[MPoint]
            when: dt.date
            blob: Any = None
    """
)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    (folder / "misen_test_models.py").write_text(MODULE)
    return folder


@pytest.fixture
def m(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(models_dir))
    import importlib

    return importlib.import_module("misen_test_models")


def roundtrip(value: Any, tmp_path: Path, name: str = "r") -> tuple[Any, dict[str, Any]]:
    _, manifest = save_result(value, tmp_path / name)
    return load_result(tmp_path / name), manifest


def test_attrs_instances_are_json_with_their_class(m: ModuleType, tmp_path: Path) -> None:
    point = m.AttrsPoint(1.5, -2.0, "a")
    out, manifest = roundtrip(point, tmp_path)
    assert manifest["serializer"] == "models.json"
    assert manifest["meta"] == {"format": "json", "kind": "attrs", "class": "misen_test_models:AttrsPoint"}
    assert json.loads((tmp_path / "r" / "model.json").read_text()) == {"x": 1.5, "y": -2.0, "label": "a"}
    assert out == point and type(out) is m.AttrsPoint


def test_nested_attrs_and_fields_json_cannot_hold(m: ModuleType, tmp_path: Path) -> None:
    run = m.AttrsRun("r1", m.AttrsPoint(0.0, 1.0), (3, 4), ["a"], extra={1, 2})
    out, manifest = roundtrip(run, tmp_path)
    meta = manifest["meta"]
    assert meta["format"] == "fields"
    assert set(meta["fields"]) == {"point", "shape", "extra"}
    assert meta["fields"]["point"]["serializer"] == "models.json"  # nested model: JSON again
    assert meta["fields"]["shape"]["serializer"] == "pickle"
    assert json.loads((tmp_path / "r" / "model.json").read_text()) == {"name": "r1", "tags": ["a"]}
    assert out == run and type(out.point) is m.AttrsPoint and out.shape == (3, 4)


def test_pydantic_models_use_pydantic_json(m: ModuleType, tmp_path: Path) -> None:
    pytest.importorskip("pydantic")
    when = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)
    run = m.Run(name="a", when=when, points=[m.Point(x=1, y=2)], shape=(2, 3), scores={"acc": 0.5})
    out, manifest = roundtrip(run, tmp_path)
    assert manifest["meta"] == {"format": "json", "kind": "pydantic", "class": "misen_test_models:Run"}
    text = (tmp_path / "r" / "model.json").read_text()
    assert m.Run.model_validate_json(text) == run  # readable by pydantic alone
    assert out == run and out.when == when and isinstance(out.points[0], m.Point) and out.shape == (2, 3)


def test_pydantic_field_json_cannot_hold_is_stored_apart(m: ModuleType, tmp_path: Path) -> None:
    pytest.importorskip("pydantic")
    when = dt.datetime(2024, 5, 1)
    run = m.Run(name="a", when=when, points=[], shape=(1, 1), blob=frozenset({1, 2}))
    out, manifest = roundtrip(run, tmp_path)
    meta = manifest["meta"]
    assert meta["format"] == "fields" and set(meta["fields"]) >= {"blob", "when", "shape"}
    assert meta["fields"]["blob"]["serializer"] == "pickle"
    assert out == run and type(out.blob) is frozenset and out.when == when


def test_pydantic_v1_models_use_their_json(m: ModuleType, tmp_path: Path) -> None:
    if not hasattr(m, "V1Point"):
        pytest.skip("pydantic.v1 is not installed")
    point = m.V1Point(x=1.5, when=dt.date(2024, 1, 2))
    out, manifest = roundtrip(point, tmp_path)
    assert manifest["meta"] == {"format": "json", "kind": "pydantic.v1", "class": "misen_test_models:V1Point"}
    assert m.V1Point.parse_raw((tmp_path / "r" / "model.json").read_text()) == point
    assert out == point and out.when == dt.date(2024, 1, 2)


def test_msgspec_structs_use_msgspec_json(m: ModuleType, tmp_path: Path) -> None:
    msgspec = pytest.importorskip("msgspec")
    run = m.MRun("a", [m.MPoint(1.0, 2.0)], dt.date(2024, 1, 2))
    out, manifest = roundtrip(run, tmp_path)
    assert manifest["meta"]["kind"] == "msgspec" and manifest["meta"]["format"] == "json"
    assert msgspec.json.decode((tmp_path / "r" / "model.json").read_bytes(), type=m.MRun) == run
    assert out == run
    odd = m.MRun("b", [], dt.date(2024, 1, 2), blob=(1, 2))
    out, manifest = roundtrip(odd, tmp_path, "odd")
    assert manifest["meta"]["format"] == "fields" and out == odd and out.blob == (1, 2)


def test_classes_another_process_cannot_import_are_pickled(tmp_path: Path) -> None:
    import attrs

    @attrs.define
    class Local:
        a: int

    out, manifest = roundtrip(Local(3), tmp_path)
    assert manifest["meta"]["format"] == "pickle" and "cannot be imported" in manifest["meta"]["reason"]
    assert out.a == 3


def test_models_in_containers_stay_in_the_containers_pickle(m: ModuleType, tmp_path: Path) -> None:
    sweep = {(0.1, i): m.AttrsPoint(float(i), 0.0) for i in range(3)}
    out, manifest = roundtrip(sweep, tmp_path)
    assert manifest["serializer"] == "pickle" and out == sweep


def test_namedtuples_and_ordered_dicts_are_still_walked(tmp_path: Path) -> None:
    # models claim `object` through a match; generic containers' subclasses must still count as containers
    import collections

    Pair = collections.namedtuple("Pair", "a b")
    big = b"x" * (2 * 1024 * 1024)  # large bytes are a leaf of their own
    for value in (Pair(big, 1), collections.OrderedDict(a=big, b=1)):
        out, manifest = roundtrip(value, tmp_path, type(value).__name__)
        assert manifest["serializer"] == "container", type(value)
        assert [leaf["serializer"] for leaf in manifest["meta"]["leaves"]] == ["bytes"]
        assert list(out) == list(value) and type(out).__name__ == type(value).__name__


def test_a_fresh_process_loads_the_model(m: ModuleType, models_dir: Path, tmp_path: Path) -> None:
    run = m.AttrsRun("r1", m.AttrsPoint(0.0, 1.0), (3,), extra=None)
    save_result(run, tmp_path / "r")
    code = (
        "import sys; from pathlib import Path; from misen.serializer import load_result\n"
        f"v = load_result(Path({str(tmp_path / 'r')!r}))\n"
        "print(type(v).__name__, v.point.y, v.shape)\n"
    )
    env_path = str(models_dir)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "PYTHONPATH": env_path, "MISEN_NO_ENTRY_POINTS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["AttrsRun", "1.0", "(3,)"]


def test_a_missing_class_counts_as_not_cached(m: ModuleType, tmp_path: Path) -> None:
    from misen.errors import ResultCorruptedError

    save_result(m.AttrsPoint(1, 2), tmp_path / "r")
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    manifest["meta"]["class"] = "misen_test_models:Gone"
    (tmp_path / "r" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ResultCorruptedError, match="cannot be imported"):
        load_result(tmp_path / "r")


class TestModelsContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Any:
        return serializer_for(_point())

    @pytest.fixture
    def values(self, m: ModuleType) -> list[Any]:
        out: list[Any] = [m.AttrsPoint(1.0, 2.0), m.AttrsRun("x", m.AttrsPoint(0, 0), (1,))]
        try:
            out.append(m.Point(x=1, y=2))
        except AttributeError:
            pass
        return out


def _point() -> Any:
    import attrs

    @attrs.define
    class P:
        a: int = 0

    return P()
