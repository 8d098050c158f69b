"""misen-serializers-boosting: XGBoost, LightGBM and CatBoost boosters and scikit-learn wrappers in each library's
own model file, predictions equal on fixed inputs after a round trip (here and in a fresh process), the files read
by the libraries alone, containers, and the hasher. The libraries are imported inside fixtures and tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from misen.hashing import hash_value
from misen.serializer import Serializer, load_result, save_result, serializer_for
from misen.testing import SerializerContract
from misen.testing.processes import only_plugins, run_python

PLUGINS = "serializers-boosting"


@pytest.fixture(scope="session")
def data() -> tuple[Any, Any, Any]:
    """Fixed inputs: features, string class labels (three classes), a regression target."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((120, 4))
    labels = np.array(["low", "mid", "high"])[(x[:, 0] * 3).astype(int)]
    return x, labels, x @ np.array([1.0, -2.0, 0.5, 0.0])


@pytest.fixture(scope="session")
def models(data: tuple[Any, Any, Any]) -> dict[str, Any]:
    """One small trained model of each kind (trained once per session)."""
    import catboost
    import lightgbm
    import numpy as np
    import xgboost

    x, labels, target = data
    codes = np.unique(labels, return_inverse=True)[1]
    small = {"n_estimators": 8, "max_depth": 3}
    return {
        "xgb_booster": xgboost.train({"max_depth": 2}, xgboost.DMatrix(x, label=target), num_boost_round=5),
        "xgb_classifier": xgboost.XGBClassifier(**small, random_state=0).fit(x, codes),
        "xgb_regressor": xgboost.XGBRegressor(**small, missing=np.nan).fit(x, target),
        "lgb_booster": lightgbm.train(
            {"objective": "regression", "verbose": -1, "num_leaves": 4}, lightgbm.Dataset(x, target), 5
        ),
        "lgb_classifier": lightgbm.LGBMClassifier(**small, verbose=-1).fit(x, labels),
        "lgb_regressor": lightgbm.LGBMRegressor(**small, verbose=-1).fit(x, target),
        "cb_classifier": catboost.CatBoostClassifier(
            iterations=8, depth=3, verbose=False, random_seed=0, allow_writing_files=False
        ).fit(x, labels),
        "cb_regressor": catboost.CatBoostRegressor(
            iterations=8, depth=3, verbose=False, random_seed=0, allow_writing_files=False
        ).fit(x, target),
    }


def predictions(model: Any, x: Any) -> Any:
    """What the model predicts on ``x``: probabilities and labels for a classifier, values otherwise."""
    import numpy as np

    if type(model).__name__ == "Booster" and type(model).__module__.startswith("xgboost"):
        import xgboost

        return [model.predict(xgboost.DMatrix(x))]
    out = [np.asarray(model.predict(x))]
    if hasattr(model, "predict_proba"):
        out.append(np.asarray(model.predict_proba(x)))
    return out


def assert_same_model(a: Any, b: Any, x: Any) -> None:
    import numpy as np

    assert type(a) is type(b)
    for pa, pb in zip(predictions(a, x), predictions(b, x), strict=True):
        assert pa.dtype == pb.dtype
        np.testing.assert_array_equal(pa, pb)
    if hasattr(a, "get_params"):
        assert_same_params(a.get_params(), b.get_params(), catboost=type(a).__module__.startswith("catboost"))
    if hasattr(a, "classes_"):
        np.testing.assert_array_equal(a.classes_, b.classes_)


def assert_same_params(a: dict[str, Any], b: dict[str, Any], catboost: bool = False) -> None:
    """Equal parameters (NaN equals NaN); CatBoost's loaded model adds those it read from the file to ``a``."""
    assert set(b) <= set(a) if catboost else set(a) == set(b)
    for key, value in b.items():
        assert a[key] == value or (value != value and a[key] != a[key]), key


class _BoostingContract(SerializerContract):
    kinds: tuple[str, ...] = ()
    plugin = ""

    @pytest.fixture
    def serializer(self) -> Serializer:
        from misen.serializer import serializer_named

        return serializer_named(self.plugin)

    @pytest.fixture
    def values(self, models: dict[str, Any]) -> list[Any]:
        return [models[k] for k in self.kinds]

    @pytest.fixture(autouse=True)
    def _x(self, data: tuple[Any, Any, Any]) -> None:
        self.x = data[0]

    def assert_equal(self, a: Any, b: Any) -> None:
        assert_same_model(a, b, self.x)


class TestXGBoostBooster(_BoostingContract):
    kinds, plugin = ("xgb_booster",), "xgboost.booster"


class TestXGBoostWrappers(_BoostingContract):
    kinds, plugin = ("xgb_classifier", "xgb_regressor"), "xgboost.sklearn"


class TestLightGBMBooster(_BoostingContract):
    kinds, plugin = ("lgb_booster",), "lightgbm.booster"


class TestLightGBMWrappers(_BoostingContract):
    kinds, plugin = ("lgb_classifier", "lgb_regressor"), "lightgbm.sklearn"


class TestCatBoost(_BoostingContract):
    kinds, plugin = ("cb_classifier", "cb_regressor"), "catboost.model"


def test_the_model_files_open_with_each_library_alone(
    models: dict[str, Any], data: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    import catboost
    import lightgbm
    import numpy as np
    import xgboost

    x = data[0]
    for name in ("xgb_classifier", "lgb_regressor", "cb_classifier"):
        _, manifest = save_result(models[name], tmp_path / name)
        assert set(manifest["files"]) == {
            "wrapper.json",
            {"xgb": "model.ubj", "lgb": "model.txt", "cb_": "model.cbm"}[name[:3]],
        }
    xgb = xgboost.XGBClassifier()
    xgb.load_model(tmp_path / "xgb_classifier" / "model.ubj")
    np.testing.assert_array_equal(xgb.predict_proba(x), models["xgb_classifier"].predict_proba(x))
    lgb = lightgbm.Booster(model_file=str(tmp_path / "lgb_regressor" / "model.txt"))
    np.testing.assert_array_equal(lgb.predict(x), models["lgb_regressor"].predict(x))
    cb = catboost.CatBoostClassifier()
    cb.load_model(str(tmp_path / "cb_classifier" / "model.cbm"))
    np.testing.assert_array_equal(cb.predict_proba(x), models["cb_classifier"].predict_proba(x))
    wrapper = json.loads((tmp_path / "cb_classifier" / "wrapper.json").read_text())
    assert wrapper["class"] == "catboost.core:CatBoostClassifier"


def test_a_dict_of_models_and_metrics(
    models: dict[str, Any], data: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    value = {name: models[name] for name in ("xgb_classifier", "lgb_classifier", "cb_regressor")}
    value["metrics"] = {"accuracy": 0.9}
    _, manifest = save_result(value, tmp_path / "r")
    assert manifest["serializer"] == "container"
    assert sorted(leaf["serializer"] for leaf in manifest["meta"]["leaves"]) == [
        "catboost.model",
        "lightgbm.sklearn",
        "xgboost.sklearn",
    ]
    out = load_result(tmp_path / "r")
    for name in ("xgb_classifier", "lgb_classifier", "cb_regressor"):
        assert_same_model(out[name], models[name], data[0])
    assert out["metrics"] == {"accuracy": 0.9}


_LOAD = """
import json, sys
from pathlib import Path
import numpy as np
from misen.serializer import load_result
out = load_result(Path(sys.argv[1]))
x = np.load(sys.argv[2])
res = {}
for name, model in out.items():
    if name == "xgb_booster":
        import xgboost
        res[name] = model.predict(xgboost.DMatrix(x)).tolist()
    else:
        res[name] = np.asarray(model.predict(x)).tolist()
print(json.dumps(res))
"""


def test_models_load_in_a_fresh_process_with_only_this_plugin(
    models: dict[str, Any], data: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    import numpy as np

    save_result(dict(models), tmp_path / "r")
    np.save(tmp_path / "x.npy", data[0])
    stdout = run_python(_LOAD, str(tmp_path / "r"), str(tmp_path / "x.npy"), env=only_plugins(PLUGINS, tmp_path), timeout=300)
    out = json.loads(stdout.strip().splitlines()[-1])
    assert set(out) == set(models)
    for name, model in models.items():
        expected = predictions(model, data[0])[0]
        got = np.array(out[name], dtype=expected.dtype).reshape(expected.shape)
        np.testing.assert_array_equal(got, expected)


def test_unfitted_models_store_their_parameters(tmp_path: Path) -> None:
    import catboost
    import lightgbm
    import xgboost

    for i, model in enumerate(
        [
            xgboost.XGBRegressor(max_depth=2),
            lightgbm.LGBMClassifier(num_leaves=5),
            catboost.CatBoostRegressor(depth=2),
        ]
    ):
        _, manifest = save_result(model, tmp_path / str(i))
        assert manifest["meta"]["fitted"] is False and list(manifest["files"]) == ["wrapper.json"]
        out = load_result(tmp_path / str(i))
        assert type(out) is type(model)
        assert_same_params(out.get_params(), model.get_params())


def test_a_wrapper_class_that_cannot_be_imported_is_refused_or_named(tmp_path: Path) -> None:
    import xgboost
    from misen.errors import MisenError

    class LocalRegressor(xgboost.XGBRegressor):
        pass

    refused = r"the model class .*LocalRegressor is defined in .*, which another process cannot import"
    with pytest.raises(MisenError, match=refused):
        save_result(LocalRegressor(max_depth=2), tmp_path / "local")
    save_result(xgboost.XGBRegressor(max_depth=2), tmp_path / "r")
    wrapper = tmp_path / "r" / "wrapper.json"
    body = json.loads(wrapper.read_text())
    assert body["class"] == "xgboost.sklearn:XGBRegressor"
    body["class"] = "xgboost.sklearn:GoneRegressor"  # as if a newer xgboost had renamed it
    wrapper.write_text(json.dumps(body))
    lost = r"this result is a xgboost\.sklearn\.GoneRegressor, which cannot be imported here"
    with pytest.raises(MisenError, match=lost):
        load_result(tmp_path / "r", verify=False)


def test_a_callable_parameter_falls_back_to_pickle_for_the_wrapper_only(
    models: dict[str, Any], data: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    import lightgbm
    import numpy as np

    x, _, target = data
    model = lightgbm.LGBMRegressor(n_estimators=3, verbose=-1, objective=_squared_error).fit(x, target)
    _, manifest = save_result(model, tmp_path / "r")
    assert manifest["meta"]["wrapper"] == "pickle"
    assert set(manifest["files"]) == {"model.txt", "wrapper.pkl"}
    out = load_result(tmp_path / "r")
    assert out.get_params()["objective"] is _squared_error
    np.testing.assert_array_equal(out.predict(x), model.predict(x))


def _squared_error(y_true: Any, y_pred: Any) -> tuple[Any, Any]:
    import numpy as np

    return y_pred - y_true, np.ones_like(y_pred)


def test_registry_prefers_these_serializers_over_scikit_learn(models: dict[str, Any]) -> None:
    expected = {
        "xgb_booster": "xgboost.booster",
        "xgb_classifier": "xgboost.sklearn",
        "lgb_booster": "lightgbm.booster",
        "lgb_regressor": "lightgbm.sklearn",
        "cb_classifier": "catboost.model",
    }
    assert {name: serializer_for(models[name]).PLUGIN_NAME for name in expected} == expected


def test_registering_imports_no_boosting_library(tmp_path: Path) -> None:
    code = (
        "import sys, misen.session as p\n"
        "p.registry().serializers(); p.registry().hashers()\n"
        "from misen.hashing import hash_value; hash_value({'a': 1})\n"
        "bad = [m for m in ('xgboost', 'lightgbm', 'catboost', 'numpy') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    run_python(code, env=only_plugins(PLUGINS, tmp_path), timeout=120)


def test_unfitted_models_hash_as_arguments_and_fitted_ones_are_refused(models: dict[str, Any]) -> None:
    import xgboost
    from misen.errors import UnhashableArgumentError

    assert hash_value(xgboost.XGBClassifier(max_depth=3)) == hash_value(xgboost.XGBClassifier(max_depth=3))
    assert hash_value(xgboost.XGBClassifier(max_depth=3)) != hash_value(xgboost.XGBClassifier(max_depth=4))
    assert hash_value(xgboost.XGBClassifier(max_depth=3)) != hash_value(xgboost.XGBRegressor(max_depth=3))
    assert hash_value(xgboost.XGBClassifier(max_depth=None)) == hash_value(xgboost.XGBClassifier())
    # pinned: identities never change (only parameters given explicitly count)
    assert hash_value(xgboost.XGBClassifier(max_depth=3)) == "52b8d0f15418744aea77654d8a261b4d"
    with pytest.raises(UnhashableArgumentError, match="fitted XGBClassifier cannot be a task argument"):
        hash_value(models["xgb_classifier"])
    with pytest.raises(UnhashableArgumentError, match="fitted CatBoostClassifier"):
        hash_value(models["cb_classifier"])


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
    values = [models["xgb_classifier"], models["lgb_booster"], models["cb_regressor"]]
    extras = [f'pip install "misen[{name}]"' for name in ("xgboost", "lightgbm", "catboost")]
    for i, value in enumerate(values):
        save_result(value, tmp_path / str(i))
        out = run_python(_MISSING, str(tmp_path / str(i)), env=only_plugins("", tmp_path), timeout=120)
        assert "which is not installed" in out and extras[i] in out, out
