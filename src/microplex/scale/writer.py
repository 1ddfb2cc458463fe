"""Atomic, resumable Parquet output: hive partitions, per-task markers and a run manifest.

Layout of an output directory::

    path/
      _microplex_manifest.json          run spec (seed, model hash, ...), status, files
      _microplex_tasks/task-000003.json one marker per finished task (its files and rows)
      state=CA/part-000003.parquet      data (hive partitioning by ``partition_by``)

Every file is written under a hidden temporary name (``.tmp-microplex-*.partial``: the
leading dot hides it from pyarrow, pandas and Spark, the suffix from ``*.parquet`` globs as
used by DuckDB and polars) and renamed with :func:`os.replace` once complete, so a
crash or a full disk never leaves a half-written file visible. A task's marker is written
after all its files are in place; a re-run of the same call skips tasks with a marker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._errors import DataValidationError

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "model_hash",
    "atomic_write_json",
    "prepare_output",
    "write_task",
    "finish_output",
]

logger = logging.getLogger(__name__)

#: Version of the output layout and of the seed derivation; bumped on incompatible changes.
FORMAT_VERSION = 1
MANIFEST_NAME = "_microplex_manifest.json"
TASKS_DIR = "_microplex_tasks"
_TMP_PREFIX = ".tmp-microplex-"


def model_hash(synth) -> str:
    """SHA-256 of everything that determines a fitted Synthesizer's draws.

    Covers the torch state dict (names, dtypes, shapes, bytes) and the encoders, kinds,
    dtypes and pattern table.
    """
    h = hashlib.sha256()
    for name, tensor in sorted(synth.model_.state_dict().items()):
        t = tensor.detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    meta = {
        "targets": list(synth.target_vars),
        "conditions": list(synth.condition_vars),
        "kinds": synth.kinds_,
        "dtypes": synth.dtypes_,
        "encoders": {n: e.to_dict() for n, e in synth.encoders_.items()},
        "condition_encoder": synth.condition_encoder_.to_dict(),
        "patterns": np.asarray(synth.patterns_).tolist(),
        "params": {k: repr(v) for k, v in sorted(synth.get_params().items()) if k != "verbose"},
    }
    h.update(json.dumps(meta, sort_keys=True, default=repr).encode())
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _tmp_name(final: Path) -> Path:
    return final.with_name(f"{_TMP_PREFIX}{uuid.uuid4().hex[:12]}-{final.name}.partial")


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Writes ``obj`` as JSON to ``path`` through a temporary file and :func:`os.replace`."""
    final = Path(path)
    tmp = _tmp_name(final)
    try:
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _visible_entries(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(_TMP_PREFIX))


def prepare_output(path: str | os.PathLike, spec: dict[str, Any]) -> set[int]:
    """Creates or reopens an output directory for the run described by ``spec``.

    Returns the ids of tasks already finished by an earlier attempt of the same run (their
    files present with the recorded sizes). Raises :class:`DataValidationError` when
    ``path`` is a file, holds files but no manifest, or holds a manifest of another run.
    Leftover temporary files of a crashed attempt are removed.
    """
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise DataValidationError(f"Output path {str(root)!r} exists and is not a directory.")
    manifest_path = root / MANIFEST_NAME
    if root.is_dir() and not manifest_path.exists() and _visible_entries(root):
        raise DataValidationError(
            f"Output path {str(root)!r} already holds files ({_visible_entries(root)[:5]}) but no microplex "
            "manifest; refusing to write into it. Choose an empty or new directory."
        )
    if manifest_path.exists():
        with open(manifest_path) as fh:
            old = json.load(fh).get("spec", {})
        diff = sorted(k for k in set(old) | set(spec) if old.get(k) != spec.get(k))
        if diff:
            details = "; ".join(f"{k}: expected {old.get(k)!r}, got {spec.get(k)!r}" for k in diff[:4])
            raise DataValidationError(
                f"Output path {str(root)!r} holds another run (differs in {diff}: {details}); "
                "refusing to overwrite it. Choose a new directory or repeat the original call to resume."
            )
    root.mkdir(parents=True, exist_ok=True)
    (root / TASKS_DIR).mkdir(exist_ok=True)
    for tmp in root.rglob(f"{_TMP_PREFIX}*"):
        tmp.unlink(missing_ok=True)
    if not manifest_path.exists():
        atomic_write_json(manifest_path, {"format_version": FORMAT_VERSION, "status": "running", "spec": spec})
        _fsync_dir(root)
    return {t for t, _ in _finished_tasks(root)}


def _finished_tasks(root: Path) -> list[tuple[int, dict[str, Any]]]:
    done = []
    for marker in sorted((root / TASKS_DIR).glob("task-*.json")):
        with open(marker) as fh:
            info = json.load(fh)
        ok = all(
            (root / f["path"]).is_file() and (root / f["path"]).stat().st_size == f["bytes"] for f in info["files"]
        )
        if ok:
            done.append((int(info["task"]), info))
    return done


def _partition_dir(keys: tuple, partition_by: list[str]) -> str:
    parts = []
    for col, value in zip(partition_by, keys, strict=True):
        text = "__HIVE_DEFAULT_PARTITION__" if value is None else quote(str(value), safe="")
        parts.append(f"{col}={text}")
    return "/".join(parts)


class _TaskWriter:
    """Streams the tables of one task into one temporary Parquet file per partition."""

    def __init__(self, root: Path, task: int, partition_by: list[str], row_group_rows: int) -> None:
        self.root, self.task, self.partition_by = root, task, partition_by
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
        data = table.drop_columns(self.partition_by)
        if keys.num_rows == 0:
            return
        uniq = keys.group_by(self.partition_by).aggregate([]).to_pylist()
        for row in uniq:
            key = tuple(row[c] for c in self.partition_by)
            mask = None
            for c in self.partition_by:
                m = pc.equal(keys[c], pa.scalar(row[c], keys[c].type)) if row[c] is not None else pc.is_null(keys[c])
                mask = m if mask is None else pc.and_(mask, m)
            self._buffer(key, data.filter(mask))

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
            final = self.root / sub / f"part-{self.task:06d}.parquet" if sub else self.root / f"part-{self.task:06d}.parquet"
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = _tmp_name(final)
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
    root = Path(path)
    writer = _TaskWriter(root, task, list(partition_by or []), row_group_rows)
    try:
        rows = 0
        for table in tables:
            writer.write(table)
            rows += table.num_rows
        files = writer.close()
    except BaseException:
        writer.abort()
        raise
    info = {"task": task, "rows": rows, "files": files}
    atomic_write_json(root / TASKS_DIR / f"task-{task:06d}.json", info)
    return info


def finish_output(path: str | os.PathLike, spec: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Writes the final manifest (status ``complete``, every file with its rows) and returns it."""
    root = Path(path)
    tasks = sorted(_finished_tasks(root))
    files = [f for _, info in tasks for f in info["files"]]
    manifest = {
        "format_version": FORMAT_VERSION,
        "status": "complete",
        "spec": spec,
        "rows": int(sum(info["rows"] for _, info in tasks)),
        "n_tasks": len(tasks),
        "files": sorted(files, key=lambda f: f["path"]),
        **(extra or {}),
    }
    atomic_write_json(root / MANIFEST_NAME, manifest)
    _fsync_dir(root)
    for tmp in root.rglob(f"{_TMP_PREFIX}*"):  # left by a worker that died and whose task was retried
        tmp.unlink(missing_ok=True)
    return manifest
