"""Named config: the single SVM the sweep found best on seed 0 (C=3, gamma=0.1)."""

from __future__ import annotations

from digits_study.experiments.training import TrainingExperiment

__config__ = TrainingExperiment(c=3.0, gamma=0.1)

if __name__ == "__main__":
    __config__.cli()
