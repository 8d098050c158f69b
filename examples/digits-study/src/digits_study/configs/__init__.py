"""Named configs: pinned experiment parameters (run one with ``python -m digits_study.configs.NAME``)."""
