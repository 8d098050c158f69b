"""Serializers for PyTorch: tensors, state dicts and checkpoints (weights-only loads), and whole modules.

torch is imported inside `match`/`save`/`load` only, when a torch value is met; registering imports nothing.
"""

from __future__ import annotations

import collections
import sys
import warnings
from pathlib import Path
from typing import Any

from misen.serializer import LoadContext, SaveContext, Serializer, import_reference

__all__ = ["CheckpointSerializer", "ModuleSerializer", "TensorSerializer", "place"]

TENSOR_FILE = "tensor.pt"
CHECKPOINT_FILE = "checkpoint.pt"
MODULE_FILE = "module.pt"
_PLAIN = (int, float, bool, str, type(None))
_PLAIN_SET = frozenset(_PLAIN)
_CONTAINERS = (dict, collections.OrderedDict, list, tuple)


def place(value: Any, device: str, what: str) -> Any:
    """Move ``value`` to ``device`` when this machine has it; else keep it on the CPU and warn once."""
    import torch

    if device == "cpu":
        return value
    dev = torch.device(device)
    available = False
    if dev.type == "cuda":
        available = torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count()
    elif dev.type == "mps":
        available = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    else:
        module = getattr(torch, dev.type, None)
        available = bool(module is not None and getattr(module, "is_available", lambda: False)())
    if available:
        return value.to(dev)
    warnings.warn(
        f"{what} was saved from device {device}, which this machine does not have; it is loaded on the CPU",
        RuntimeWarning,
        stacklevel=3,
    )
    return value


def _load(path: Path, ctx: LoadContext, *, weights_only: bool = True, **kwargs: Any) -> Any:
    import torch

    # memory-map the zip's storages when the workspace allows: no copy, pages come in as they are used
    return torch.load(path, map_location="cpu", weights_only=weights_only, mmap=ctx.mmap, **kwargs)


def _is_small_view(tensor: Any) -> bool:
    """A strided tensor using less than its storage (a slice), whose storage torch.save would write whole."""
    import torch

    if tensor.layout != torch.strided or tensor.is_nested or tensor.is_quantized:
        return False
    try:
        return bool(tensor.untyped_storage().nbytes() > tensor.numel() * tensor.element_size())
    except RuntimeError:
        return False


class TensorSerializer(Serializer):
    """`torch.Tensor` (and `torch.nn.Parameter`): one ``torch.save`` file, loaded weights-only.

    A CUDA (or other accelerator) tensor is written from a CPU copy and its device recorded; loading puts it
    back on that device when present, else on the CPU with a `RuntimeWarning`. ``requires_grad`` is kept. A
    slice of a larger tensor is stored as a copy of just that slice (``torch.save`` alone would write the
    whole underlying storage).
    """

    PLUGIN_NAME = "torch.tensor"
    TYPES = ("torch.Tensor",)
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import torch

        device = str(value.device)
        out = value
        if value.device.type != "cpu":
            out = value.detach().cpu().requires_grad_(value.requires_grad)
        elif _is_small_view(value):
            # torch.save writes a view's whole storage: a 3-element slice of a 1 GiB tensor would store 1 GiB
            out = value.detach().clone().requires_grad_(value.requires_grad)
        torch.save(out, directory / TENSOR_FILE)
        try:
            shape: list[int] | None = list(value.shape)
        except RuntimeError:  # nested tensors have no single shape
            shape = None
        return {"device": device, "dtype": str(value.dtype), "shape": shape}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        tensor = _load(directory / TENSOR_FILE, ctx)
        return place(tensor, meta.get("device", "cpu"), "a tensor")


def _is_checkpoint(value: Any, depth: int = 0) -> tuple[bool, bool]:
    """(only weights-only types inside, at least one tensor) for nested dicts/lists/tuples."""
    import torch

    if isinstance(value, torch.Tensor):
        return True, True
    if type(value) in _PLAIN or isinstance(value, (torch.dtype, torch.device, torch.Size)):
        return True, False
    if depth > 20:
        return False, False
    if type(value) in (dict, collections.OrderedDict):
        items = list(value.values())
        if not all(type(k) in _PLAIN for k in value):
            return False, False
    elif type(value) in (list, tuple):
        items = list(value)
    else:
        return False, False
    kinds = set(map(type, items))
    if kinds <= _PLAIN_SET:  # a long list of numbers is screened in C, not item by item
        return True, False
    found = False
    for item in items:
        if type(item) in _PLAIN_SET:
            continue
        ok, has = _is_checkpoint(item, depth + 1)
        if not ok:
            return False, False
        found = found or has
    return True, found


def _devices(value: Any, prefix: str, out: dict[str, str]) -> None:
    import torch

    if isinstance(value, torch.Tensor):
        if value.device.type != "cpu":
            out[prefix] = str(value.device)
    elif isinstance(value, dict):
        for k, v in value.items():
            _devices(v, f"{prefix}/{k}", out)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _devices(v, f"{prefix}/{i}", out)


def _restore_devices(value: Any, prefix: str, devices: dict[str, str]) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        device = devices.get(prefix)
        return place(value, device, f"tensor {prefix or '/'}") if device else value
    if isinstance(value, dict):
        for k in list(value):
            value[k] = _restore_devices(value[k], f"{prefix}/{k}", devices)
        return value
    if isinstance(value, list):
        return [_restore_devices(v, f"{prefix}/{i}", devices) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(_restore_devices(v, f"{prefix}/{i}", devices) for i, v in enumerate(value))
    return value


class CheckpointSerializer(Serializer):
    """State dicts and checkpoints: dicts (``OrderedDict`` too), lists and tuples, nested, of tensors and plain
    values (numbers, strings, None, dtypes, devices, sizes) with at least one tensor.

    ``model.state_dict()``, ``optimizer.state_dict()`` and ``{"model": ..., "optim": ..., "epoch": 3}`` are one
    ``torch.save`` file, loaded with ``weights_only=True`` (no code runs on load) and memory-mapped when
    allowed. Tensors on an accelerator are recorded by path and put back there when the device is present. A
    container that mixes in other types (NumPy arrays, frames) goes to the generic container serializer.
    """

    PLUGIN_NAME = "torch.state_dict"
    TYPES = ("builtins.dict", "collections.OrderedDict", "builtins.list", "builtins.tuple")
    FORMAT_VERSION = 1
    # above the generic container split, so a state dict stays one file
    PRIORITY = 10

    def match(self, value: Any) -> bool:
        # exact types only: subclasses of dict (scipy's dok matrices…) are someone else's business
        if type(value) not in _CONTAINERS or not value or "torch" not in sys.modules:
            return False
        ok, has_tensor = _is_checkpoint(value)
        return ok and has_tensor

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import torch

        devices: dict[str, str] = {}
        _devices(value, "", devices)
        torch.save(value, directory / CHECKPOINT_FILE)
        return {"devices": devices}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        value = _load(directory / CHECKPOINT_FILE, ctx)
        devices = meta.get("devices") or {}
        return _restore_devices(value, "", devices) if devices else value


class ModuleSerializer(Serializer):
    """`torch.nn.Module`: the whole module with ``torch.save`` (dill when pickle cannot, e.g. a local class).

    A whole module is a pickle: loading it imports the module's class and runs ``torch.load`` with
    ``weights_only=False``, so the class must be importable where the result is loaded, and you must trust the
    workspace. The class path is recorded and checked before loading, for a clear message. Where you can,
    return ``model.state_dict()`` instead (stored weights-only) and rebuild the module in the task that uses it.
    """

    PLUGIN_NAME = "torch.module"
    TYPES = ("torch.nn.modules.module.Module",)
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import torch

        devices = sorted({str(p.device) for p in list(value.parameters()) + list(value.buffers())})
        cls = type(value)
        path = directory / MODULE_FILE
        try:
            torch.save(value, path)
            engine = "pickle"
        except Exception:
            import dill

            path.unlink(missing_ok=True)
            torch.save(value, path, pickle_module=dill)
            engine = "dill"
        return {"class": f"{cls.__module__}:{cls.__qualname__}", "engine": engine, "devices": devices}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        name = str(meta.get("class", ""))
        qualname = name.partition(":")[2]
        if name and meta.get("engine") != "dill" and "<locals>" not in qualname:
            import_reference(
                name,
                what="whole torch module of class",
                advice="make the class importable, or have the task return its state_dict()",
            )
        kwargs: dict[str, Any] = {}
        if meta.get("engine") == "dill":
            import dill

            kwargs["pickle_module"] = dill
        module = _load(directory / MODULE_FILE, ctx, weights_only=False, **kwargs)
        devices = [d for d in meta.get("devices", []) if d != "cpu"]
        if len(devices) == 1:
            module = place(module, devices[0], f"module {qualname}")
        return module
