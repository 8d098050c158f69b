"""Which package provides what misen supports through plugins: the one table behind every "install …" hint.

Kept free of imports so that any module (the plugin registry, the serializer dispatch, ``misen.__getattr__``) can
read it without pulling in anything else.
"""

from __future__ import annotations

import types
from collections.abc import Mapping

__all__ = ["EXPORTS", "PROVIDERS", "install_hint", "provider_of"]

#: ``(kind, name) → requirement to install``. Kinds: ``executor`` and ``workspace`` (by registered name or
#: alias), ``library`` (the top-level module of a type whose results or arguments a plugin handles).
PROVIDERS: Mapping[tuple[str, str], str] = types.MappingProxyType(
    {
        ("executor", "local"): "misen-executor-local",
        ("executor", "slurm"): "misen[slurm]",
        ("executor", "dask"): "misen[dask]",
        ("workspace", "disk"): "misen-workspace-disk",
        ("workspace", "s3"): "misen[s3]",
        ("workspace", "gcs"): "misen[s3]",
        ("workspace", "fsspec"): "misen[s3]",
        ("environment", "conda"): "misen[conda]",
        ("library", "numpy"): "misen[numpy]",
        ("library", "scipy"): "misen[scipy]",
        ("library", "pandas"): "misen[pandas]",
        ("library", "pyarrow"): "misen[pandas]",
        ("library", "polars"): "misen[polars]",
        ("library", "torch"): "misen[torch]",
        ("library", "sklearn"): "misen[sklearn]",
        ("library", "keras"): "misen[keras]",
        ("library", "tensorflow"): "misen[keras]",
        ("library", "jax"): "misen[jax]",
        ("library", "jaxlib"): "misen[jax]",
        ("library", "xgboost"): "misen[xgboost]",
        ("library", "lightgbm"): "misen[lightgbm]",
        ("library", "catboost"): "misen[catboost]",
        ("library", "datasets"): "misen[huggingface]",
        ("library", "transformers"): "misen[huggingface]",
        ("library", "PIL"): "misen[pil]",
        ("library", "pil"): "misen[pil]",  # the registry name of its serializer, "pil.image"
        ("library", "plotly"): "misen[plotly]",
        ("library", "altair"): "misen[altair]",
        ("library", "sympy"): "misen[sympy]",
        ("library", "xarray"): "misen[xarray]",
        ("library", "geopandas"): "misen[geopandas]",
        ("library", "onnx"): "misen[onnx]",
    }
)

#: Classes importable from ``misen`` that live in plugin packages: name → (module, (kind, plugin name)).
EXPORTS: Mapping[str, tuple[str, tuple[str, str]]] = types.MappingProxyType(
    {
        "LocalExecutor": ("misen_executor_local", ("executor", "local")),
        "SlurmExecutor": ("misen_executor_slurm", ("executor", "slurm")),
        "DiskWorkspace": ("misen_workspace_disk", ("workspace", "disk")),
        "S3Workspace": ("misen_workspace_s3", ("workspace", "s3")),
    }
)


def provider_of(kind: str, name: str) -> str | None:
    """The requirement that provides ``name`` of ``kind`` (for ``library``, any dotted name: its top level)."""
    key = name.strip().lower().replace("_", "-") if kind != "library" else name.split(".")[0]
    return PROVIDERS.get((kind, key))


def install_hint(requirement: str) -> str:
    """How to install ``requirement``, as a command to copy."""
    return f'`pip install "{requirement}"` (in a uv project: `uv add "{requirement}"`)'
