"""Serializers for ``datasets``: `datasets.Dataset` and `datasets.DatasetDict` with ``save_to_disk`` (Arrow files
plus ``dataset_info.json`` and ``state.json``), loaded back with ``load_from_disk``. datasets is imported inside the
methods only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from misen.serializer import LoadContext, SaveContext, Serializer

__all__ = ["DatasetDictSerializer", "DatasetSerializer"]

DATASET_DIR = "dataset"


class DatasetSerializer(Serializer):
    """`datasets.Dataset`: ``dataset/`` as ``Dataset.save_to_disk`` writes it (features, format, fingerprint kept).

    Loading memory-maps the Arrow files from the workspace when it allows (``ctx.mmap``), as datasets does with
    its own cache: a large dataset is not read into memory (and, as datasets does for any memory-mapped
    dataset, a later ``map`` writes its cache file beside those Arrow files unless given ``cache_file_name``). Without memory-mapping (a remote workspace's
    temporary copy) it is read into memory. Indices from ``select``/``shuffle`` are applied before saving
    (``save_to_disk`` flattens them), so the stored dataset has the rows in their selected order (and, as with
    datasets' own ``save_to_disk``, a new fingerprint). An empty dataset is written as one empty shard, which
    ``load_from_disk`` reads back (with no shard at all, as ``save_to_disk`` writes by default, it cannot).
    """

    PLUGIN_NAME = "datasets.dataset"
    TYPES = ("datasets.arrow_dataset.Dataset",)
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import datasets

        # an empty dataset would be saved with no Arrow file at all, which load_from_disk cannot read: one shard
        value.save_to_disk(str(directory / DATASET_DIR), num_shards=1 if value.num_rows == 0 else None)
        return {"datasets_version": datasets.__version__, "rows": value.num_rows}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        import datasets

        return datasets.Dataset.load_from_disk(str(directory / DATASET_DIR), keep_in_memory=not ctx.mmap)


class DatasetDictSerializer(Serializer):
    """`datasets.DatasetDict` (splits): ``dataset/`` as ``DatasetDict.save_to_disk`` writes it, one folder per split
    and ``dataset_dict.json`` naming them; loaded like a `datasets.Dataset`."""

    PLUGIN_NAME = "datasets.dataset_dict"
    TYPES = ("datasets.dataset_dict.DatasetDict",)
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import datasets

        empty = {name: 1 for name, split in value.items() if split.num_rows == 0}
        value.save_to_disk(str(directory / DATASET_DIR), num_shards=empty or None)
        return {"datasets_version": datasets.__version__, "splits": {k: v.num_rows for k, v in value.items()}}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        import datasets

        return datasets.DatasetDict.load_from_disk(str(directory / DATASET_DIR), keep_in_memory=not ctx.mmap)
