"""The main job: a grid sweep over the SVM's ``C`` and ``gamma``, summarised by a plot and the best setting.

Run it with ``python -m digits_study.experiments.sweep``; the ``plot`` result is a PNG stored in the workspace
(it loads as the path of the stored file).
"""

from __future__ import annotations

from typing import Any

from misen import Experiment, Task

from digits_study.experiments.training import TrainingExperiment
from digits_study.tasks import best_setting, plot_sweep

__all__ = ["DigitsSweep"]


class DigitsSweep(Experiment):
    """Every ``(c, gamma)`` pair of the grid, each a `TrainingExperiment` sharing one data split."""

    cs: list[float] = [0.3, 1.0, 3.0, 10.0]
    gammas: list[float] = [0.01, 0.03, 0.1, 0.3]
    seed: int = 0

    def tasks(self) -> dict[str, Task[Any]]:
        metrics = {
            (c, gamma): TrainingExperiment(c=c, gamma=gamma, seed=self.seed)["metrics"].T
            for c in self.cs
            for gamma in self.gammas
        }
        return {
            "best": Task(best_setting, metrics=metrics),
            "plot": Task(plot_sweep, metrics=metrics),
        }


if __name__ == "__main__":
    DigitsSweep.cli()
