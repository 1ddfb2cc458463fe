"""Writing one task of a dataset: its tables streamed into one temporary Parquet file per hive
partition, renamed into place when complete, then the task's marker (see :mod:`.writer` for the
layout and the guarantees).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._errors import DataValidationError
from ._layout import Layout, layout
from ._manifest import marker_name
from .writer import (
    _HIVE_NULL,
    _MAX_SEGMENT_BYTES,
    TASKS_DIR,
    _tmp_name,
    atomic_write_json,
    check_partition_names,
    inside,
    part_name,
    write_common_metadata,
)

__all__ = ["write_task", "write_linked_task"]


def _partition_dir(keys: tuple, partition_by: list[str]) -> str:
    """``col=value/...`` with values percent-encoded (pyarrow's hive ``segment_encoding="uri"``)."""
    check_partition_names(partition_by)
    parts = []
    for col, value in zip(partition_by, keys, strict=True):
        if value is not None and str(value) == _HIVE_NULL:  # read back as missing: the value would be lost
            raise DataValidationError(
                f"Partition column {col!r} holds the value {_HIVE_NULL!r}, which hive partitioning reads back as a "
                "missing value; recode it before partitioning by this column.")
        text = _HIVE_NULL if value is None else quote(str(value), safe="")
        segment = f"{col}={text}"
        if len(segment.encode()) > _MAX_SEGMENT_BYTES:
            raise DataValidationError(
                f"Partition column {col!r} has a value too long for a directory name "
                f"({len(segment.encode())} bytes encoded, at most {_MAX_SEGMENT_BYTES}): {str(value)[:60]!r}... "
                "Partition by a shorter code instead."
            )
        parts.append(segment)
    return "/".join(parts)


def _without_pandas_columns(table: pa.Table, names: list[str]) -> pa.Table:
    """``table`` (a data file's columns, the partition columns ``names`` dropped) with ``names`` left out of its
    Arrow schema's ``pandas`` metadata too: listed there with a nullable dtype (``boolean``, ``Int64``), pandas
    read the folder's dictionary-typed partition column into that dtype and ``pd.read_parquet("pop")`` raised
    (``TypeError: Expected array of boolean type``). Unlisted, pandas reads a partition column as it reads any
    (a categorical); the schema file (:func:`~microplex.scale.dataset_schema`) keeps its type."""
    meta = table.schema.metadata
    if not meta or b"pandas" not in meta:
        return table
    pandas_meta = json.loads(meta[b"pandas"])
    columns = pandas_meta.get("columns")
    if not isinstance(columns, list):
        return table
    kept = [c for c in columns if not (isinstance(c, dict) and c.get("name") in names
                                       and c.get("field_name", c.get("name")) in names)]
    if len(kept) == len(columns):
        return table
    pandas_meta["columns"] = kept
    return table.replace_schema_metadata({**meta, b"pandas": json.dumps(pandas_meta).encode()})


class _TaskWriter:
    """Streams the tables of one task into one temporary Parquet file per partition."""

    def __init__(self, lay: Layout, task: int, partition_by: list[str], row_group_rows: int) -> None:
        self.root, self.meta, self.task, self.partition_by = lay.root, lay.meta, task, partition_by
        self.row_group_rows = row_group_rows
        self.buffers: dict[tuple, list[pa.Table]] = {}
        self.buffered: dict[tuple, int] = {}
        self.writers: dict[tuple, tuple[pq.ParquetWriter, Path, Path, int]] = {}
        self.schema: pa.Schema | None = None

    def write(self, table: pa.Table) -> None:
        if not self.partition_by:
            self._buffer((), table)
            return
        keys = pa.Table.from_arrays([table[c] for c in self.partition_by], names=self.partition_by)
        data = _without_pandas_columns(table.drop_columns(self.partition_by), self.partition_by)
        if keys.num_rows == 0:
            return
        uniq = keys.group_by(self.partition_by).aggregate([]).to_pylist()
        placed = 0
        for row in uniq:
            key = tuple(row[c] for c in self.partition_by)
            mask = None
            for c in self.partition_by:
                m = pc.equal(keys[c], pa.scalar(row[c], keys[c].type)) if row[c] is not None else pc.is_null(keys[c])
                mask = m if mask is None else pc.and_(mask, m)
            part = data.filter(mask)
            placed += part.num_rows
            self._buffer(key, part)
        if placed != table.num_rows:  # e.g. NaN keys, which equal nothing: never drop rows silently
            raise DataValidationError(
                f"Partition columns {self.partition_by} hold values that cannot be partitioned "
                f"({table.num_rows - placed} of {table.num_rows} rows match no partition, e.g. NaN)."
            )

    def _buffer(self, key: tuple, table: pa.Table) -> None:
        self.buffers.setdefault(key, []).append(table)
        self.buffered[key] = self.buffered.get(key, 0) + table.num_rows
        if self.buffered[key] >= self.row_group_rows:
            self._flush(key)
        elif sum(self.buffered.values()) >= 4 * self.row_group_rows:
            for k in list(self.buffers):
                self._flush(k)

    def _flush(self, key: tuple) -> None:
        tables = self.buffers.pop(key, [])
        self.buffered.pop(key, None)
        if not tables:
            return
        table = pa.concat_tables(tables)
        if self.schema is None:
            self.schema = table.schema
        table = table.cast(self.schema) if table.schema != self.schema else table
        if key not in self.writers:
            sub = _partition_dir(key, self.partition_by)
            final = inside(self.root, f"{sub}/{part_name(self.task)}" if sub else part_name(self.task))
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = _tmp_name(final, self.meta)
            self.writers[key] = (_open_writer(tmp, self.schema), tmp, final, 0)
        writer, tmp, final, rows = self.writers[key]
        writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self.writers[key] = (writer, tmp, final, rows + table.num_rows)

    def close(self) -> list[dict[str, Any]]:
        """Closes every file and renames it into place; returns ``[{path, rows, bytes}]``."""
        for key in list(self.buffers):
            self._flush(key)
        for writer, _, _, _ in self.writers.values():
            writer.close()
        files = []
        for _, tmp, final, rows in sorted(self.writers.values(), key=lambda w: str(w[2])):
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            _commit(tmp, final)
            files.append({"path": final.relative_to(self.root).as_posix(), "rows": rows, "bytes": final.stat().st_size})
        self.writers = {}
        return files

    def abort(self) -> None:
        for writer, tmp, _, _ in self.writers.values():
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - already failing; the temporary file goes anyway
                pass
            tmp.unlink(missing_ok=True)
        self.writers, self.buffers, self.buffered = {}, {}, {}


def _open_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """Opens a Parquet writer (a seam for tests that inject failures)."""
    return pq.ParquetWriter(path, schema, compression="snappy")


def _commit(tmp: Path, final: Path) -> None:
    os.replace(tmp, final)


def write_task(
    path: str | os.PathLike,
    task: int,
    tables: Iterable[pa.Table],
    partition_by: list[str] | None = None,
    *,
    row_group_rows: int = 262_144,
) -> dict[str, Any]:
    """Writes the tables of one task atomically and records its marker.

    Parameters
    ----------
    path : str or path-like
        Output directory (prepared by :func:`prepare_output`).
    task : int
        Task id; names the files ``part-{task:06d}.parquet``.
    tables : iterable of pyarrow.Table
        The task's rows in order, all with the same schema.
    partition_by : list of str, default=None
        Hive partition columns (taken out of the files and into the directory names).
    row_group_rows : int, default=262144
        Rows buffered per partition before a row group is written.

    Returns
    -------
    dict
        The marker: ``{"task", "rows", "files": [{"path", "rows", "bytes"}]}``.
    """
    return write_linked_task([path], task, ((t,) for t in tables), partition_by, row_group_rows=row_group_rows)[0]


def write_linked_task(
    paths: list[str | os.PathLike],
    task: int,
    tables: Iterable[tuple[pa.Table, ...]],
    partition_by: list[str] | None = None,
    *,
    row_group_rows: int = 262_144,
) -> list[dict[str, Any]]:
    """:func:`write_task` into several datasets at once (linked tables, e.g. households and persons).

    ``tables`` yields one table per dataset at a time; every file of every dataset is in place before
    the first marker is written, so a task is finished only when each dataset has its marker.
    """
    layouts = [layout(p) for p in paths]
    writers = [_TaskWriter(lay, task, list(partition_by or []), row_group_rows) for lay in layouts]
    rows = [0] * len(writers)
    try:
        for group in tables:
            for i, (writer, table) in enumerate(zip(writers, group, strict=True)):
                if rows[i] == 0:
                    write_common_metadata(writer.root, table.schema)
                writer.write(table)
                rows[i] += table.num_rows
        files = [writer.close() for writer in writers]
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    infos = [{"task": task, "rows": r, "files": f} for r, f in zip(rows, files, strict=True)]
    for lay, info in zip(layouts, infos, strict=True):
        atomic_write_json(inside(lay.meta, f"{TASKS_DIR}/{marker_name(task)}"), info)
    return infos
