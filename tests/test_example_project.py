"""The example project (examples/digits-study) works as a library: small sweeps in process, real results."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
if importlib.util.find_spec("digits_study") is None:
    pytest.skip("the example project is not installed (uv sync installs it)", allow_module_level=True)

from digits_study.experiments.sweep import DigitsSweep
from digits_study.experiments.training import TrainingExperiment
from misen import MemoryWorkspace


def test_small_sweep_trains_evaluates_and_draws() -> None:
    ws = MemoryWorkspace(name="digits-example")
    sweep = DigitsSweep(cs=[0.3, 3.0], gammas=[0.01, 0.1])
    report = sweep.run(executor="in-process", workspace=ws)
    assert report.ok, report.failed
    best = sweep["best"].result(ws)
    assert (best["c"], best["gamma"]) == (3.0, 0.1)  # the best of this grid, also the default sweep's best
    assert 0.95 < best["accuracy"] <= 1.0
    png = Path(sweep["plot"].result(ws))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    # The sweep shares its training runs with the single experiment of the same parameters.
    single = TrainingExperiment(c=3.0, gamma=0.1)
    assert single["metrics"].is_cached(ws)
    assert single["metrics"].result(ws)["accuracy"] == best["accuracy"]


def test_named_configs_are_experiments() -> None:
    from digits_study.configs.baseline import __config__ as baseline
    from digits_study.configs.fine_sweep import __config__ as fine

    assert baseline == TrainingExperiment(c=3.0, gamma=0.1)
    assert isinstance(fine, DigitsSweep) and len(fine.cs) * len(fine.gammas) == 9
    assert set(fine.tasks()) == {"best", "plot"}


def test_every_task_has_an_id_like_misen_fill_writes() -> None:
    from digits_study import tasks
    from misen._fill import ID_ALPHABET, ID_LENGTH
    from misen.taskmeta import get_meta

    functions = [getattr(tasks, name) for name in tasks.__all__]
    ids = [get_meta(fn).id for fn in functions]
    assert all(i and len(i) == ID_LENGTH and set(i) <= set(ID_ALPHABET) for i in ids), ids
    assert len(set(ids)) == len(ids)
    assert all(get_meta(fn).cache and get_meta(fn).resources for fn in functions)
