"""A value of a library whose serializer plugin is an extra of misen that is not installed is refused with one
line naming the extra, instead of being pickled silently."""

from __future__ import annotations

from pathlib import Path

import pytest
from misen.errors import PluginNotFoundError
from misen.providers import provider_of
from misen.serializer import save_result, serializer_for
from misen.testing.fixtures import start_session


@pytest.fixture
def builtins_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A session with the built-in plugins only, whatever the environment has installed."""
    monkeypatch.setenv("MISEN_NO_ENTRY_POINTS", "1")
    start_session()


def test_every_library_the_seed_names_has_an_extra() -> None:
    expected = {
        "keras": "keras",
        "tensorflow": "keras",
        "jax": "jax",
        "xgboost": "xgboost",
        "lightgbm": "lightgbm",
        "catboost": "catboost",
        "datasets": "huggingface",
        "transformers": "huggingface",
        "PIL": "pil",
        "plotly": "plotly",
        "altair": "altair",
        "sympy": "sympy",
        "xarray": "xarray",
        "geopandas": "geopandas",
        "onnx": "onnx",
        "numpy": "numpy",
        "scipy": "scipy",
        "pandas": "pandas",
        "pyarrow": "pandas",
        "polars": "polars",
        "torch": "torch",
        "sklearn": "sklearn",
    }
    for module, extra in expected.items():
        assert provider_of("library", f"{module}.core.something") == f"misen[{extra}]", module
    assert provider_of("library", "mypackage.models") is None


def test_an_xarray_dataset_without_its_plugin_names_the_extra(builtins_only: None, tmp_path: Path) -> None:
    xr = pytest.importorskip("xarray")
    ds = xr.Dataset({"a": ("x", [1, 2])})
    with pytest.raises(PluginNotFoundError) as info:
        save_result(ds, tmp_path / "r")
    message = str(info.value)
    assert message.startswith('install "misen[xarray]" to store xarray.Dataset results')
    assert "\n" not in message
    assert not (tmp_path / "r" / "value.pkl").exists()


def test_inside_a_container_too(builtins_only: None, tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    with pytest.raises(PluginNotFoundError, match=r'install "misen\[numpy\]" to store numpy.ndarray results'):
        save_result({"weights": np.zeros(3), "loss": 0.5}, tmp_path / "r")


def test_with_the_plugin_installed_unclaimed_types_still_pickle() -> None:
    np = pytest.importorskip("numpy")
    pytest.importorskip("misen_serializers_numpy")
    rng = np.random.default_rng(0)  # numpy's plugin claims arrays, not generators
    assert serializer_for(rng).PLUGIN_NAME == "pickle"
    assert serializer_for(np.zeros(2)).PLUGIN_NAME == "numpy.ndarray"


def test_plain_python_values_are_unaffected(builtins_only: None) -> None:
    assert serializer_for({"a": 1}).PLUGIN_NAME == "pickle"
    assert serializer_for(b"x").PLUGIN_NAME == "bytes"


def test_a_result_of_a_missing_serializer_names_its_extra(builtins_only: None) -> None:
    from misen.errors import ResultCorruptedError
    from misen.serializer import serializer_named

    with pytest.raises(ResultCorruptedError, match=r'pip install "misen\[xarray\]"'):
        serializer_named("xarray")
    with pytest.raises(ResultCorruptedError, match=r'pip install "misen\[pil\]"'):
        serializer_named("pil.image")
