"""Hasher for Hugging Face's declarative values as task arguments: ``transformers`` configs (a model's
architecture, e.g. ``BertConfig(num_hidden_layers=2)``) and ``datasets.Features`` (a dataset's schema)."""

from __future__ import annotations

import json
from typing import Any

from misen.errors import UnhashableArgumentError
from misen.hashing import Hasher

__all__ = ["HuggingFaceHasher"]


class HuggingFaceHasher(Hasher):
    """A config by class and the values that differ from its class's defaults (``BertConfig(num_hidden_layers=2)``
    is ``{"num_hidden_layers": 2}``, so upgrading transformers keeps identities); ``Features`` by ``to_dict()``."""

    PLUGIN_NAME = "huggingface"
    TYPES = (
        "transformers.configuration_utils.PretrainedConfig",
        "transformers.configuration_utils.PreTrainedConfig",
        "datasets.features.features.Features",
    )

    def reduce(self, value: Any) -> Any:
        cls = type(value)
        name = f"{cls.__module__}.{cls.__qualname__}"
        if hasattr(value, "to_diff_dict"):
            # against this class's own defaults (to_diff_dict compares with the base class's, so a BertConfig's
            # would list every BERT default, and which ones depends on the transformers version)
            defaults = cls().to_dict()
            diff = {k: v for k, v in value.to_dict().items() if k not in defaults or defaults[k] != v}
            diff.pop("transformers_version", None)
            return ("transformers.config", name, json.dumps(diff, sort_keys=True, default=str))
        if hasattr(value, "to_dict") and cls.__module__.startswith("datasets."):
            return ("datasets.features", json.dumps(value.to_dict(), sort_keys=True, default=str))
        raise UnhashableArgumentError(f"cannot hash a value of type {cls.__qualname__}")
