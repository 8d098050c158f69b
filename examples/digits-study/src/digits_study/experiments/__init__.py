"""The project's experiments, one module each (run one with ``python -m digits_study.experiments.NAME``)."""
