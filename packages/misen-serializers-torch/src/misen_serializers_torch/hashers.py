"""Hasher for PyTorch's declarative values as task arguments: dtypes and devices (``torch.Size`` is a tuple)."""

from __future__ import annotations

from typing import Any

from misen.errors import UnhashableArgumentError
from misen.hashing import Hasher

__all__ = ["TorchHasher"]


class TorchHasher(Hasher):
    """`torch.dtype` (``"torch.float32"``) and `torch.device` (``"cuda:0"``; ``"cuda"`` stays distinct).

    Tensors are refused as arguments, as the seed asks: let them flow in as another task's output.
    """

    PLUGIN_NAME = "torch"
    TYPES = ("torch.dtype", "torch.device")

    def reduce(self, value: Any) -> Any:
        import torch

        if isinstance(value, (torch.dtype, torch.device)):
            return str(value)
        raise UnhashableArgumentError(f"cannot hash a value of type {type(value).__qualname__}")
