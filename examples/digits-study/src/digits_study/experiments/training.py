"""One training run: split the digits, train an SVM with the given hyperparameters, evaluate it.

Run it with ``python -m digits_study.experiments.training --c 3 --gamma 0.1``.
"""

from __future__ import annotations

from typing import Any

from misen import Experiment, Task

from digits_study.tasks import evaluate, split_digits, train_svm

__all__ = ["TrainingExperiment"]


class TrainingExperiment(Experiment):
    """Train and evaluate one RBF SVM on the digits."""

    c: float = 1.0
    gamma: float = 0.03
    test_fraction: float = 0.25
    seed: int = 0

    def tasks(self) -> dict[str, Task[Any]]:
        data = Task(split_digits, test_fraction=self.test_fraction, seed=self.seed)
        model = Task(train_svm, data=data.T, c=self.c, gamma=self.gamma)
        metrics = Task(evaluate, model=model.T, data=data.T)
        return {"model": model, "metrics": metrics}


if __name__ == "__main__":
    TrainingExperiment.cli()
