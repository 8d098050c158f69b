"""Serializers for ``transformers``: models, tokenizers and configs with ``save_pretrained`` (the folder a Hub
repository holds: ``config.json``, ``model.safetensors``, ``tokenizer.json``…), loaded with the class's
``from_pretrained`` from that folder only (``local_files_only``: nothing is downloaded). transformers is imported
inside the methods only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from misen.serializer import LoadContext, SaveContext, Serializer, class_reference, import_reference

__all__ = ["ConfigSerializer", "ModelSerializer", "TokenizerSerializer"]

PRETRAINED_DIR = "pretrained"


def _save(value: Any, directory: Path, **kwargs: Any) -> dict[str, Any]:
    import transformers

    value.save_pretrained(str(directory / PRETRAINED_DIR), **kwargs)
    return {"class": class_reference(value), "transformers_version": transformers.__version__}


def _load(directory: Path, meta: dict[str, Any], **kwargs: Any) -> Any:
    cls = import_reference(meta["class"])
    return cls.from_pretrained(str(directory / PRETRAINED_DIR), local_files_only=True, **kwargs)


class ModelSerializer(Serializer):
    """`transformers.PreTrainedModel` (PyTorch models of any architecture and head): ``pretrained/`` with
    ``config.json`` and the weights as ``model.safetensors`` (no pickle; shared weights kept tied).

    The load uses the model's own class (recorded as ``module:qualname``), gives the model back in the dtype it
    had and in the mode it had (``model.training``; ``from_pretrained`` alone returns eval mode), on the CPU.
    Preferred over misen-serializers-torch's whole-module pickle, since the class is nearer in the MRO.
    """

    PLUGIN_NAME = "transformers.model"
    TYPES = ("transformers.modeling_utils.PreTrainedModel",)
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        meta = _save(value, directory, safe_serialization=True)
        meta.update(dtype=str(value.dtype).removeprefix("torch."), training=bool(value.training))
        return meta

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        import torch

        model = _load(directory, meta)
        dtype = getattr(torch, meta.get("dtype", "float32"))
        if model.dtype != dtype:
            model = model.to(dtype)
        return model.train(meta.get("training", False))


class TokenizerSerializer(Serializer):
    """`transformers.PreTrainedTokenizerBase` (fast and slow tokenizers): ``pretrained/`` with ``tokenizer.json``
    (or the vocabulary files of a slow tokenizer), ``tokenizer_config.json`` and the special tokens."""

    PLUGIN_NAME = "transformers.tokenizer"
    TYPES = ("transformers.tokenization_utils_base.PreTrainedTokenizerBase",)
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        return _save(value, directory)

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        return _load(directory, meta)


class ConfigSerializer(Serializer):
    """`transformers.PretrainedConfig` (``BertConfig``…): ``pretrained/config.json``."""

    PLUGIN_NAME = "transformers.config"
    TYPES = (
        "transformers.configuration_utils.PretrainedConfig",
        "transformers.configuration_utils.PreTrainedConfig",
    )
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        return _save(value, directory)

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        return _load(directory, meta)
