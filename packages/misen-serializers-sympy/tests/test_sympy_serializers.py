"""misen-serializers-sympy: expressions and matrices as srepr text, in containers, in a fresh process, readable
by SymPy alone, and as task arguments."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from misen.hashing import hash_value
from misen.serializer import load_result, save_result, serializer_for
from misen.testing import SerializerContract
from misen.testing.processes import run_python, run_without_misen

sp = pytest.importorskip("sympy")


def samples() -> list[Any]:
    x = sp.Symbol("x", positive=True)
    y, t = sp.symbols("y t", real=True)
    f = sp.Function("f")
    return [
        sp.exp(-x**2 / 2) / sp.sqrt(2 * sp.pi) + sp.Rational(1, 3) * y,
        sp.Eq(f(t).diff(t), -y * f(t)),
        sp.Matrix([[1, x], [sp.sin(y), sp.Float("0.25", 30)]]),
        sp.ImmutableMatrix([[x, 0], [0, 1]]),
        sp.Integral(sp.cos(t), (t, 0, sp.oo)),
        sp.Interval(0, 1, left_open=True),
        sp.I * sp.pi,
    ]


def roundtrip(value: Any, tmp_path: Path, name: str = "r") -> tuple[Any, dict[str, Any]]:
    _, manifest = save_result(value, tmp_path / name)
    return load_result(tmp_path / name), manifest


@pytest.mark.parametrize("index", range(7))
def test_expressions_round_trip_as_srepr(index: int, tmp_path: Path) -> None:
    value = samples()[index]
    out, manifest = roundtrip(value, tmp_path)
    assert manifest["serializer"] == "sympy.srepr" and manifest["meta"]["format"] == "srepr"
    assert type(out) is type(value) and out == value
    assert sp.srepr(out) == sp.srepr(value)  # assumptions and precision too
    text = (tmp_path / "r" / "expr.txt").read_text()
    assert sp.sympify(text) == value  # SymPy alone reads it
    code = "import sys, sympy; print(sympy.srepr(sympy.sympify(open(sys.argv[1]).read())))"
    assert run_without_misen(code, str(tmp_path / "r" / "expr.txt")).strip() == sp.srepr(value)


def test_assumptions_are_kept(tmp_path: Path) -> None:
    x = sp.Symbol("x", positive=True)
    out, _ = roundtrip(x, tmp_path)
    assert out.is_positive and out == x and out != sp.Symbol("x")


def test_a_dict_of_expressions_and_metrics(tmp_path: Path) -> None:
    x = sp.Symbol("x")
    result = {"fit": 3 * x**2 + 1, "rmse": 0.01, "terms": [x, x**2]}
    out, manifest = roundtrip(result, tmp_path)
    assert manifest["serializer"] == "container"
    assert [leaf["serializer"] for leaf in manifest["meta"]["leaves"]] == ["sympy.srepr"] * 3
    assert out == result


def test_user_defined_classes_fall_back_to_pickle(tmp_path: Path) -> None:
    out, manifest = roundtrip(Custom(sp.Symbol("z")), tmp_path)
    assert manifest["meta"]["format"] == "pickle" and "does not read back" in manifest["meta"]["reason"]
    assert out == Custom(sp.Symbol("z"))


class Custom(sp.Function):
    """A SymPy function class SymPy's names do not include."""


def test_loads_in_a_fresh_process_with_only_this_plugin(tmp_path: Path) -> None:
    save_result(samples()[0], tmp_path / "r")
    code = (
        "from pathlib import Path\n"
        "import misen.session as s, misen_serializers_sympy.hooks as h\n"
        "s.set_current_session(s.make_session(plugins=[h]))\n"
        "from misen.serializer import load_result\n"
        f"print(load_result(Path({str(tmp_path / 'r')!r})))\n"
    )
    stdout = run_python(code, env={**os.environ, "MISEN_NO_ENTRY_POINTS": "1"}, timeout=120)
    assert stdout.strip() == str(samples()[0])


def test_expressions_as_task_arguments() -> None:
    x = sp.Symbol("x")
    assert hash_value(x**2 + 1) == hash_value(1 + x**2)
    assert hash_value(x**2) != hash_value(x**3)
    assert hash_value(x) != hash_value(sp.Symbol("x", positive=True))
    assert hash_value(sp.Matrix([1, x])) != hash_value(sp.ImmutableMatrix([1, x]))


class TestSympyContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Any:
        return serializer_for(sp.Symbol("x"))

    @pytest.fixture
    def values(self) -> list[Any]:
        return samples()
