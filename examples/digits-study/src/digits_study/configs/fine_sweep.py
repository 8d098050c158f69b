"""Named config: a finer grid around the default sweep's best region."""

from __future__ import annotations

from digits_study.experiments.sweep import DigitsSweep

__config__ = DigitsSweep(cs=[2.0, 3.0, 5.0], gammas=[0.05, 0.1, 0.2])

if __name__ == "__main__":
    __config__.cli()
