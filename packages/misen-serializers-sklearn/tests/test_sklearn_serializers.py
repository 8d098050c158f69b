"""misen-serializers-sklearn: estimators and pipelines through skops, the trust model, the pickle fallback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
skops_io = pytest.importorskip("skops.io")

import numpy as np  # noqa: E402
from misen.errors import NotCachedError, ResultCorruptedError  # noqa: E402
from misen.serializer import load_result, save_result, serializer_for  # noqa: E402
from misen_serializers_sklearn.serializer import importable  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402

X = np.random.default_rng(0).random((40, 3))
Y = (X[:, 0] + X[:, 1] > 1).astype(int)


def roundtrip(value: Any, tmp_path: Path, name: str = "r") -> tuple[Any, dict[str, Any]]:
    _, manifest = save_result(value, tmp_path / name)
    return load_result(tmp_path / name), manifest


@pytest.mark.parametrize(
    "make",
    [
        lambda: make_pipeline(StandardScaler(), LogisticRegression()),
        lambda: ColumnTransformer([("s", StandardScaler(), [0, 1])], remainder="passthrough"),
        lambda: make_pipeline(FunctionTransformer(np.log1p), LogisticRegression(C=0.5)),
    ],
)
def test_fitted_pipelines_round_trip_through_skops(make: Any, tmp_path: Path) -> None:
    est = make().fit(X, Y)
    out, manifest = roundtrip(est, tmp_path)
    assert manifest["serializer"] == "sklearn.estimator" and manifest["meta"]["format"] == "skops"
    assert list(manifest["files"]) == ["estimator.skops"]
    predict = "predict" if hasattr(est, "predict") else "transform"
    np.testing.assert_array_equal(getattr(out, predict)(X), getattr(est, predict)(X))
    assert out.get_params(deep=False).keys() == est.get_params(deep=False).keys()


def test_types_outside_skops_default_trust_are_recorded_and_trusted(tmp_path: Path) -> None:
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, Y)
    out, manifest = roundtrip(forest, tmp_path)
    assert "sklearn.tree._tree.Tree" in manifest["meta"]["trusted"]
    np.testing.assert_array_equal(out.predict_proba(X), forest.predict_proba(X))


def test_a_file_naming_unrecorded_types_is_refused(tmp_path: Path) -> None:
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, Y)
    save_result(forest, tmp_path / "r")
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    manifest["meta"]["trusted"] = []  # the file now names a type the result did not record
    (tmp_path / "r" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ResultCorruptedError, match="not recorded when it was saved"):
        load_result(tmp_path / "r")
    assert issubclass(ResultCorruptedError, Exception) and not issubclass(
        ResultCorruptedError, NotCachedError
    )


def test_lambda_or_main_references_fall_back_to_pickle_and_say_why(tmp_path: Path) -> None:
    est = make_pipeline(FunctionTransformer(lambda x: x * 2), LogisticRegression()).fit(X, Y)
    out, manifest = roundtrip(est, tmp_path)
    assert manifest["meta"]["format"] == "pickle" and manifest["meta"]["engine"] == "dill"
    assert "cannot import" in manifest["meta"]["reason"]
    np.testing.assert_array_equal(out.predict(X), est.predict(X))


def test_importable() -> None:
    assert importable("sklearn.tree._tree.Tree")
    assert importable("numpy.log1p")
    assert not importable("__main__.Thing")
    assert not importable("pkg.<lambda>")
    assert not importable("sklearn.no_such_thing_here")
    assert not importable("no_such_top_level_module.X")


def test_registry_dispatch_covers_subclasses() -> None:
    assert serializer_for(LogisticRegression()).PLUGIN_NAME == "sklearn.estimator"
    assert serializer_for(make_pipeline(StandardScaler())).PLUGIN_NAME == "sklearn.estimator"


def test_registering_imports_no_sklearn() -> None:
    code = (
        "import sys, misen.session as p\n"
        "import misen_serializers_sklearn.hooks\n"
        "p.registry().serializers()\n"
        "bad = [m for m in ('sklearn', 'skops', 'numpy') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_equal_estimators_give_equal_result_hashes(tmp_path: Path) -> None:
    # skops stamps the zip with the current time; misen normalizes it so early cutoff works for estimators
    import time

    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, Y)
    h1, _ = save_result(forest, tmp_path / "a")
    time.sleep(2.1)  # zip timestamps have a 2-second resolution
    h2, _ = save_result(forest, tmp_path / "b")
    assert h1 == h2
