"""Serializer for pyarrow tables and record batches: the Arrow IPC file format, memory-mapped on load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from misen.serializer import LoadContext, SaveContext, Serializer

__all__ = ["ArrowSerializer"]

ARROW_FILE = "table.arrow"


class ArrowSerializer(Serializer):
    """`pyarrow.Table` and `pyarrow.RecordBatch` as an uncompressed Arrow IPC file (schema metadata kept).

    With ``ctx.mmap`` the load maps the file: columns are zero-copy views of the page cache.
    """

    PLUGIN_NAME = "pyarrow.table"
    TYPES = ("pyarrow.lib.Table", "pyarrow.lib.RecordBatch")
    FORMAT_VERSION = 1

    def save(self, value: Any, directory: Path, ctx: SaveContext) -> dict[str, Any]:
        import pyarrow as pa

        kind = "batch" if isinstance(value, pa.RecordBatch) else "table"
        if kind == "table" and any(pa.types.is_dictionary(f.type) for f in value.schema):
            # an IPC file holds one dictionary per field: chunks with their own dictionaries are unified
            value = value.unify_dictionaries()
        with (
            pa.OSFile(str(directory / ARROW_FILE), "wb") as sink,
            pa.ipc.new_file(sink, value.schema) as writer,
        ):
            if kind == "batch":
                writer.write_batch(value)
            else:
                writer.write_table(value)
        return {"kind": kind, "rows": value.num_rows}

    def load(self, directory: Path, meta: dict[str, Any], ctx: LoadContext) -> Any:
        import pyarrow as pa

        path = str(directory / ARROW_FILE)
        source = pa.memory_map(path, "r") if ctx.mmap else pa.OSFile(path, "rb")
        reader = pa.ipc.open_file(source)
        if meta.get("kind") == "batch":
            return reader.get_batch(0)
        table = reader.read_all()
        if not ctx.mmap:
            source.close()
        return table
