"""misen-serializers-keras: functional, sequential and subclassed models as .keras archives (predictions equal
after a round trip, in this process and a fresh one), TensorFlow tensors and variables as .npy with their dtype,
containers, and the hasher. keras and tensorflow are imported inside fixtures and tests, not at collection."""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from misen.hashing import hash_value
from misen.serializer import Serializer, load_result, save_result, serializer_for
from misen.testing import SerializerContract
from misen.testing.processes import only_plugins, run_python

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PLUGINS = "serializers-keras"

_CUSTOM_MODULE = '''
import keras


@keras.saving.register_keras_serializable(package="misen_keras_tests")
class TwoLayer(keras.Model):
    """A subclassed model with a get_config, as the Keras guide writes them."""

    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = keras.layers.Dense(units, activation="relu")
        self.out = keras.layers.Dense(1)

    def call(self, x):
        return self.out(self.hidden(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}
'''


@pytest.fixture(scope="session")
def custom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("custom")
    (folder / "misen_keras_custom.py").write_text(_CUSTOM_MODULE)
    sys.path.insert(0, str(folder))
    return folder


@pytest.fixture(scope="session")
def x() -> Any:
    import numpy as np

    return np.random.default_rng(0).random((16, 3)).astype("float32")


@pytest.fixture(scope="session")
def models(custom_dir: Path, x: Any) -> dict[str, Any]:
    """One functional, one sequential and one subclassed model, each trained one epoch (optimizer state too)."""
    import keras

    keras.utils.set_random_seed(0)
    from misen_keras_custom import TwoLayer  # type: ignore[import-not-found]

    inputs = keras.Input((3,))
    functional = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(5, activation="tanh")(inputs)))
    sequential = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    subclassed = TwoLayer(units=6)
    y = x.sum(axis=1, keepdims=True)
    for model in (functional, sequential, subclassed):
        model.compile(optimizer="adam", loss="mse")
        model.fit(x, y, epochs=1, verbose=0)
    return {"functional": functional, "sequential": sequential, "subclassed": subclassed}


def assert_same_model(a: Any, b: Any, x: Any) -> None:
    import numpy as np

    assert type(a) is type(b)
    np.testing.assert_array_equal(np.asarray(a(x)), np.asarray(b(x)))
    assert [w.dtype for w in a.weights] == [w.dtype for w in b.weights]


class TestModelContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        from misen_serializers_keras.models import ModelSerializer

        return ModelSerializer()

    @pytest.fixture
    def values(self, models: dict[str, Any]) -> list[Any]:
        return list(models.values())

    @pytest.fixture(autouse=True)
    def _x(self, x: Any) -> None:
        self.x = x

    def assert_equal(self, a: Any, b: Any) -> None:
        assert_same_model(a, b, self.x)


class TestTensorContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        from misen_serializers_keras.tensors import TensorSerializer

        return TensorSerializer()

    @pytest.fixture
    def values(self) -> list[Any]:
        import tensorflow as tf

        return [
            tf.reshape(tf.range(12, dtype=tf.float32), (3, 4)),
            tf.cast(tf.linspace(-2.0, 2.0, 5), tf.bfloat16),
            tf.constant(["a", "héllo", ""]),
            tf.constant(7, dtype=tf.int64),
            tf.zeros((0, 2), dtype=tf.float16),
        ]

    def assert_equal(self, a: Any, b: Any) -> None:
        import tensorflow as tf

        assert a.dtype == b.dtype and a.shape == b.shape
        assert bool(tf.reduce_all(a == b))


class TestVariableContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        from misen_serializers_keras.tensors import VariableSerializer

        return VariableSerializer()

    @pytest.fixture
    def values(self) -> list[Any]:
        import tensorflow as tf

        return [tf.Variable([[1.0, 2.0]], name="w"), tf.Variable(3, trainable=False, name="step")]

    def assert_equal(self, a: Any, b: Any) -> None:
        assert a.dtype == b.dtype and a.shape == b.shape and a.trainable == b.trainable
        assert a.name == b.name and (a.numpy() == b.numpy()).all()


def test_the_archive_is_stable_and_opens_with_keras_alone(
    models: dict[str, Any], x: Any, tmp_path: Path
) -> None:
    import keras

    _, manifest = save_result(models["functional"], tmp_path / "r")
    assert list(manifest["files"]) == ["model.keras"]
    path = tmp_path / "r" / "model.keras"
    with zipfile.ZipFile(path) as archive:
        assert {"config.json", "metadata.json", "model.weights.h5"} <= set(archive.namelist())
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert "date_saved" not in json.loads(archive.read("metadata.json"))
    assert_same_model(keras.saving.load_model(path), models["functional"], x)


def test_a_dict_of_models_and_metrics(models: dict[str, Any], x: Any, tmp_path: Path) -> None:
    import tensorflow as tf

    value = {"model": models["sequential"], "metrics": {"mse": 0.25}, "logits": tf.ones((2, 2))}
    _, manifest = save_result(value, tmp_path / "r")
    assert manifest["serializer"] == "container"
    assert sorted(leaf["serializer"] for leaf in manifest["meta"]["leaves"]) == [
        "keras.model",
        "tensorflow.tensor",
    ]
    out = load_result(tmp_path / "r")
    assert_same_model(out["model"], models["sequential"], x)
    assert out["metrics"] == {"mse": 0.25} and out["logits"].shape == (2, 2)


_LOAD = """
import json, sys
from pathlib import Path
import numpy as np
from misen.serializer import load_result
out = load_result(Path(sys.argv[1]))
x = np.load(sys.argv[2])
print(json.dumps({k: [type(m).__name__, np.asarray(m(x)).tolist()] for k, m in out.items()}))
"""


def test_models_load_in_a_fresh_process_with_only_this_plugin(
    models: dict[str, Any], x: Any, custom_dir: Path, tmp_path: Path
) -> None:
    import numpy as np

    save_result(dict(models), tmp_path / "r")
    np.save(tmp_path / "x.npy", x)
    env = only_plugins(PLUGINS, tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(custom_dir), env.get("PYTHONPATH", "")])
    stdout = run_python(_LOAD, str(tmp_path / "r"), str(tmp_path / "x.npy"), env=env, timeout=300)
    out = json.loads(stdout.strip().splitlines()[-1])
    for name, model in models.items():
        assert out[name][0] == type(model).__name__
        np.testing.assert_array_equal(np.array(out[name][1], dtype="float32"), np.asarray(model(x)))


def test_a_lambda_layer_is_recorded_and_loads(x: Any, tmp_path: Path) -> None:
    import keras

    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2), keras.layers.Lambda(lambda t: t * 2.0)]
    )
    _, manifest = save_result(model, tmp_path / "r")
    assert manifest["meta"]["safe_mode"] is False
    assert_same_model(load_result(tmp_path / "r"), model, x)


def test_registry_dispatch(models: dict[str, Any]) -> None:
    import tensorflow as tf

    assert {serializer_for(m).PLUGIN_NAME for m in models.values()} == {"keras.model"}
    assert serializer_for(tf.ones(2)).PLUGIN_NAME == "tensorflow.tensor"
    assert serializer_for(tf.Variable(1.0)).PLUGIN_NAME == "tensorflow.variable"


def test_a_model_class_defined_in_main_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    import keras
    from misen.errors import MisenError

    class Local(keras.Model):
        def call(self, x: Any) -> Any:
            return x

    with pytest.raises(MisenError, match="define it in an importable module"):
        save_result(Local(), tmp_path / "r")


def test_registering_imports_no_tensorflow(tmp_path: Path) -> None:
    code = (
        "import sys, misen.session as p\n"
        "p.registry().serializers(); p.registry().hashers()\n"
        "from misen.serializer import serializer_for; serializer_for({'a': [1]})\n"
        "bad = [m for m in ('keras', 'tensorflow') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    run_python(code, env=only_plugins(PLUGINS, tmp_path), timeout=120)


def test_dtypes_and_shapes_hash_as_arguments() -> None:
    import tensorflow as tf

    assert hash_value(tf.bfloat16) != hash_value(tf.float16)
    assert hash_value(tf.TensorShape([None, 3])) != hash_value(tf.TensorShape([2, 3]))
    assert hash_value(tf.TensorShape(None)) != hash_value(tf.TensorShape([]))
    assert hash_value(tf.bfloat16) == "0404a4bcce192a4b89acab5bf81f7161"  # pinned: identities never change


_MISSING = """
import sys
from pathlib import Path
from misen.serializer import load_result
try:
    load_result(Path(sys.argv[1]))
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def test_without_this_plugin_a_stored_result_names_the_extra_to_install(
    models: dict[str, Any], tmp_path: Path
) -> None:
    import tensorflow as tf

    values = [models["functional"], tf.ones(2)]
    extras = ['pip install "misen[keras]"'] * 2
    for i, value in enumerate(values):
        save_result(value, tmp_path / str(i))
        out = run_python(_MISSING, str(tmp_path / str(i)), env=only_plugins("", tmp_path), timeout=120)
        assert "which is not installed" in out and extras[i] in out, out
