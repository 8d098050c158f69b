"""misen-serializers-jax: arrays (bfloat16 and float8 kept), pytrees as JSON + .npy, containers, fresh processes,
the files read back with NumPy alone, and the hasher. jax is imported inside the tests, not at collection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from misen.hashing import hash_value
from misen.serializer import Serializer, load_result, save_result, serializer_for
from misen.testing import SerializerContract
from misen.testing.processes import only_plugins, run_python, run_without_misen

PLUGINS = "serializers-jax,serializers-numpy"


def assert_same_array(a: Any, b: Any) -> None:
    import numpy as np

    assert type(a).__name__ == "ArrayImpl", type(a)
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
    np.testing.assert_array_equal(
        np.asarray(a).reshape(-1).view(np.uint8), np.asarray(b).reshape(-1).view(np.uint8)
    )


def assert_same_tree(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same_tree(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_tree(x, y)
    elif type(a).__name__ == "ArrayImpl":
        assert_same_array(a, b)
    else:
        assert a == b


@pytest.fixture(scope="session")
def jnp() -> Any:
    import jax.numpy

    return jax.numpy


@pytest.fixture(scope="session")
def params(jnp: Any) -> dict[str, Any]:
    """A small MLP's parameters and an Adam-like optimizer state, shaped as Flax and Optax keep them."""
    import difflib

    import jax

    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    layers = {
        "Dense_0": {"kernel": jax.random.normal(k1, (4, 8)), "bias": jnp.zeros(8)},
        "Dense_1": {"kernel": jax.random.normal(k2, (8, 2)).astype(jnp.bfloat16), "bias": jnp.zeros(2)},
    }
    zeros = jax.tree_util.tree_map(jnp.zeros_like, layers)
    # difflib.Match is a namedtuple importable everywhere, standing for Optax's ScaleByAdamState
    opt_state = (difflib.Match(jnp.array(3, dtype=jnp.int32), zeros, zeros), ())
    return {"params": {"params": layers}, "opt_state": opt_state, "step": 3, "name": "mlp", "extra": None}


class TestArrayContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        from misen_serializers_jax.arrays import ArraySerializer

        return ArraySerializer()

    @pytest.fixture
    def values(self, jnp: Any) -> list[Any]:
        return [
            jnp.arange(10_000, dtype=jnp.float32).reshape(100, 100),
            jnp.linspace(-3, 3, 7).astype(jnp.bfloat16),
            jnp.linspace(-3, 3, 7).astype(jnp.float8_e4m3fn),
            jnp.array(5, dtype=jnp.int8),
            jnp.zeros((0, 3), dtype=jnp.uint16),
            jnp.array([True, False]),
            jnp.ones((2, 2), dtype=jnp.complex64),
        ]

    def assert_equal(self, a: Any, b: Any) -> None:
        assert_same_array(a, b)


class TestPytreeContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        from misen_serializers_jax.pytrees import PytreeSerializer

        return PytreeSerializer()

    @pytest.fixture
    def values(self, params: dict[str, Any], jnp: Any) -> list[Any]:
        return [params, [jnp.ones(3), {"a": (jnp.zeros(2), 1.5)}], {1: jnp.ones(1), 2: [None, "x"]}]

    def assert_equal(self, a: Any, b: Any) -> None:
        assert_same_tree(a, b)


def test_pytree_is_json_and_plain_npy_files(params: dict[str, Any], tmp_path: Path) -> None:
    import ml_dtypes
    import numpy as np

    _, manifest = save_result(params, tmp_path / "r")
    assert manifest["serializer"] == "jax.pytree"
    assert not any(name.endswith(".pkl") for name in manifest["files"]), "nothing is pickled"
    stored = json.loads((tmp_path / "r" / "tree.json").read_text())
    kernel = stored["tree"]["dict"][0][1]["dict"][0][1]["dict"][1][1]["dict"][0][
        1
    ]  # params/params/Dense_1/kernel
    leaf = stored["leaves"][kernel["leaf"]]
    assert leaf["dtype"] == "bfloat16" and leaf["stored_as"] == "uint16" and leaf["shape"] == [8, 2]
    # without misen: NumPy reads the bits, ml_dtypes gives them their dtype back
    path = tmp_path / "r" / "leaves" / str(kernel["leaf"]) / "array.npy"
    raw = np.load(path).view(ml_dtypes.bfloat16)
    expected = np.asarray(params["params"]["params"]["Dense_1"]["kernel"])
    np.testing.assert_array_equal(raw, expected)
    out = json.loads(run_without_misen(_READ_BFLOAT16, str(path)))
    assert out == ["bfloat16", [8, 2], expected.astype("float32").ravel().tolist()]


_READ_BFLOAT16 = """
import json, sys
import ml_dtypes, numpy as np
raw = np.load(sys.argv[1]).view(ml_dtypes.bfloat16)
print(json.dumps([str(raw.dtype), list(raw.shape), raw.astype("float32").ravel().tolist()]))
"""


def test_a_dict_of_models_and_metrics_keeps_each_array(
    params: dict[str, Any], jnp: Any, tmp_path: Path
) -> None:
    np = pytest.importorskip("numpy")
    value = {"model": params["params"], "confusion": np.eye(2), "acc": 0.75, "logits": jnp.ones((2, 2))}
    _, manifest = save_result(value, tmp_path / "r")
    # a NumPy array is not a JAX leaf: the generic container splits the dict, each JAX array still a .npy
    assert manifest["serializer"] == "container"
    assert sorted(leaf["serializer"] for leaf in manifest["meta"]["leaves"]) == [
        "jax.array",
        "jax.array",
        "jax.array",
        "jax.array",
        "jax.array",
        "numpy.ndarray",
    ]
    out = load_result(tmp_path / "r")
    assert_same_tree(out["model"], value["model"])
    assert out["acc"] == 0.75 and (out["confusion"] == np.eye(2)).all()


def test_registry_dispatch(jnp: Any) -> None:
    assert serializer_for(jnp.ones(2)).PLUGIN_NAME == "jax.array"
    assert serializer_for({"w": jnp.ones(2), "lr": 0.1}).PLUGIN_NAME == "jax.pytree"
    assert serializer_for({"w": 1.0}).PLUGIN_NAME != "jax.pytree"
    assert serializer_for({("a", 1): jnp.ones(2)}).PLUGIN_NAME == "container"  # tuple keys: not JSON


_SAVE = """
import jax, jax.numpy as jnp, numpy as np, sys
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from pathlib import Path
from misen.serializer import save_result
mesh = Mesh(np.array(jax.devices()), ("x",))
x = jax.device_put(jnp.arange(8.0).astype(jnp.bfloat16), NamedSharding(mesh, PartitionSpec("x")))
assert len(x.sharding.device_set) == 2
_, m = save_result({"w": x, "b": jnp.ones(2)}, Path(sys.argv[1]))
print(m["serializer"])
"""

_LOAD = """
import sys, warnings, json
from pathlib import Path
from misen.serializer import load_result
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    out = load_result(Path(sys.argv[1]))
import numpy as np
print(json.dumps([str(out["w"].dtype), np.asarray(out["w"]).astype("f4").tolist(), len(out["w"].sharding.device_set),
                  [str(w.message) for w in caught]]))
"""


def test_a_sharded_array_is_stored_whole_and_loads_in_a_fresh_process(tmp_path: Path) -> None:
    env = only_plugins(PLUGINS, tmp_path)
    save_env = {**env, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    out = run_python(_SAVE, str(tmp_path / "r"), env=save_env)
    assert out.split() == ["jax.pytree"]
    stdout = run_python(_LOAD, str(tmp_path / "r"), env=env)
    dtype, values, ndevices, warned = json.loads(stdout.strip().splitlines()[-1])
    assert (dtype, values, ndevices) == ("bfloat16", [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 1)
    assert any("sharding is not stored" in w for w in warned), warned


def test_registering_imports_no_jax(tmp_path: Path) -> None:
    code = (
        "import sys, misen.session as p\n"
        "p.registry().serializers(); p.registry().hashers()\n"
        "from misen.serializer import serializer_for; serializer_for({'a': [1]})\n"
        "from misen.hashing import hash_value; hash_value({'a': 1})\n"
        "bad = [m for m in ('jax', 'jaxlib', 'ml_dtypes') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    run_python(code, env=only_plugins(PLUGINS, tmp_path))


def test_jax_dtypes_and_small_arrays_hash_as_arguments(jnp: Any) -> None:
    from misen.errors import UnhashableArgumentError
    from misen_serializers_jax.hashers import MAX_ARRAY_BYTES

    assert hash_value(jnp.bfloat16) != hash_value(jnp.float16)
    assert hash_value(jnp.float32) == hash_value(jnp.float32)
    # pinned, and the same whichever module JAX keeps its scalar types' class in (jax 0.4.26 keeps it in
    # lax_numpy, later versions in scalar_types): the hasher's TYPE_TAG names the type, not JAX's private path
    assert hash_value(jnp.bfloat16) == "40dafadffb6f23ad162c0338f9d6b7f4"
    assert hash_value(jnp.arange(3.0)) == "b971f68ce441c7655b5c2950f0cba039"
    assert hash_value(jnp.arange(3.0)) == hash_value(jnp.arange(3.0))
    assert hash_value(jnp.arange(3.0)) != hash_value(jnp.arange(3.0).astype(jnp.bfloat16))
    with pytest.raises(UnhashableArgumentError, match="too large to be a task argument"):
        hash_value(jnp.zeros(MAX_ARRAY_BYTES // 4 + 1, dtype=jnp.float32))


_MISSING = """
import sys
from pathlib import Path
from misen.serializer import load_result
try:
    load_result(Path(sys.argv[1]))
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def test_without_this_plugin_a_stored_result_names_the_extra_to_install(jnp: Any, tmp_path: Path) -> None:
    values, extras = [jnp.ones(2)], ['pip install "misen[jax]"']
    for i, value in enumerate(values):
        save_result(value, tmp_path / str(i))
        out = run_python(_MISSING, str(tmp_path / str(i)), env=only_plugins("", tmp_path), timeout=120)
        assert "which is not installed" in out and extras[i] in out, out
