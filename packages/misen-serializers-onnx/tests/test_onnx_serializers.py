"""misen-serializers-onnx: ONNX models as .onnx files, predictions equal through ONNX Runtime, in containers,
in a fresh process, readable by onnx alone."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from misen.serializer import load_result, save_result, serializer_for
from misen.testing import SerializerContract
from misen.testing.processes import run_python, run_without_misen

onnx = pytest.importorskip("onnx")
np = pytest.importorskip("numpy")

X = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)


def linear_model() -> Any:
    """``y = relu(x @ W + b)``, built with onnx.helper (nothing downloaded)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((3, 2)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(2).astype(np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["h"]),
            helper.make_node("Add", ["h", "b"], ["z"]),
            helper.make_node("Relu", ["z"], ["y"]),
        ],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        initializer=[w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="misen-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def predict(model: Any) -> Any:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": X})[0]


def roundtrip(value: Any, tmp_path: Path, name: str = "r") -> tuple[Any, dict[str, Any]]:
    _, manifest = save_result(value, tmp_path / name)
    return load_result(tmp_path / name), manifest


def test_models_round_trip_with_equal_predictions(tmp_path: Path) -> None:
    model = linear_model()
    out, manifest = roundtrip(model, tmp_path)
    assert manifest["serializer"] == "onnx.model" and list(manifest["files"]) == ["model.onnx"]
    assert out.SerializeToString() == model.SerializeToString()
    np.testing.assert_array_equal(predict(out), predict(model))
    assert predict(out).shape == (4, 2) and (predict(out) >= 0).all()


def test_the_file_opens_with_onnx_and_onnxruntime_alone(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    save_result(linear_model(), tmp_path / "r")
    path = tmp_path / "r" / "model.onnx"
    assert onnx.load(str(path)).producer_name == "misen-tests"
    code = "import sys, onnx; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m); print(m.graph.name, m.producer_name)"
    assert run_without_misen(code, str(path)).split() == ["linear", "misen-tests"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"x": X})[0], predict(linear_model()))


def test_a_dict_of_a_model_and_metrics(tmp_path: Path) -> None:
    result = {"model": linear_model(), "accuracy": 0.9, "classes": ["a", "b"]}
    out, manifest = roundtrip(result, tmp_path)
    assert [leaf["serializer"] for leaf in manifest["meta"]["leaves"]] == ["onnx.model"]
    np.testing.assert_array_equal(predict(out["model"]), predict(result["model"]))
    assert out["accuracy"] == 0.9 and out["classes"] == ["a", "b"]


def test_loads_in_a_fresh_process_with_only_this_plugin(tmp_path: Path) -> None:
    save_result(linear_model(), tmp_path / "r")
    code = (
        "from pathlib import Path\n"
        "import misen.session as s, misen_serializers_onnx.hooks as h\n"
        "s.set_current_session(s.make_session(plugins=[h]))\n"
        "from misen.serializer import load_result\n"
        f"m = load_result(Path({str(tmp_path / 'r')!r}))\n"
        "print(type(m).__name__, m.graph.name, [n.op_type for n in m.graph.node])\n"
    )
    stdout = run_python(code, env={**os.environ, "MISEN_NO_ENTRY_POINTS": "1"}, timeout=120)
    assert stdout.strip() == "ModelProto linear ['MatMul', 'Add', 'Relu']"


def test_large_models_keep_their_weights_in_external_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from misen_serializers_onnx import serializer as mod

    monkeypatch.setattr(mod, "EXTERNAL_DATA_BYTES", 0)  # the layout of a model over 2 GiB, on a small one
    model = linear_model()
    out, manifest = roundtrip(model, tmp_path)
    assert manifest["meta"] == {"external_data": True}
    assert set(manifest["files"]) == {"model.onnx", "model.onnx.data"}
    np.testing.assert_array_equal(predict(out), predict(model))
    assert model.graph.initializer[0].raw_data  # the caller's model is left as it was


class TestOnnxContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Any:
        return serializer_for(linear_model())

    @pytest.fixture
    def values(self) -> list[Any]:
        return [linear_model()]
