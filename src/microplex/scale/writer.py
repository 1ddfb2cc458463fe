"""Atomic, resumable Parquet output: hive partitions, per-task markers and a run manifest.

Layout of an output directory::

    path/
      _microplex_manifest.json          run spec (seed, model hash, ...), status, files
      _microplex_tasks/task-000003.json one marker per finished task (its files and rows)
      _common_metadata                  the full Arrow schema, partition columns' types included
      state=CA/part-000003.parquet      data (hive partitioning by ``partition_by``)

Names that become paths are data: partition columns must be plain path segments (refused
otherwise, see :func:`check_partition_names`), partition values are percent-encoded as pyarrow's
hive partitioning does (``quote(str(value), safe="")``, decoded by pyarrow on read), and every
path is built by :func:`inside`, which refuses one that resolves outside the output directory.
Everything read back on resume (the manifest and the task markers) is validated before use
(:mod:`._manifest`): a tampered or damaged file raises one clear error and nothing is written.

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

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._errors import DataValidationError, MicroplexError
from ._lock import LOCK_NAME
from ._manifest import check_manifest, check_marker, check_part, is_regular, marker_task, read_json

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "COMMON_METADATA_NAME",
    "write_common_metadata",
    "model_hash",
    "atomic_write_json",
    "prepare_output",
    "write_task",
    "write_linked_task",
    "finish_output",
    "check_partition_names",
    "inside",
]

logger = logging.getLogger(__name__)

#: Version of the output layout and of the seed derivation; bumped on incompatible changes.
FORMAT_VERSION = 1
MANIFEST_NAME = "_microplex_manifest.json"
TASKS_DIR = "_microplex_tasks"
COMMON_METADATA_NAME = "_common_metadata"
_TMP_PREFIX = ".tmp-microplex-"


#: Longest path segment written (bytes); most file systems allow 255.
_MAX_SEGMENT_BYTES = 255


def inside(root: str | os.PathLike, rel: str | os.PathLike) -> Path:
    """``root / rel``, refused unless it resolves (symbolic links followed) inside ``root``.

    Every output path is built here: partition directories, part files, markers.

    >>> inside("/data/out", "state=CA/part-000000.parquet").as_posix()
    '/data/out/state=CA/part-000000.parquet'
    >>> inside("/data/out", "/etc/passwd")
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: Refusing to write '/etc/passwd': it resolves outside the output directory '/data/out'.
    """
    base = Path(root)
    text = os.fspath(rel)
    target = base / text
    if "\x00" in text or Path(text).is_absolute() or ".." in Path(text).parts:
        resolved = None
    else:
        real_base, resolved = base.resolve(), target.resolve()
    if resolved is None or (resolved != real_base and real_base not in resolved.parents):
        raise DataValidationError(
            f"Refusing to write {text!r}: it resolves outside the output directory {str(base)!r}."
        )
    return target


def check_partition_names(names: list[str]) -> None:
    """Refuses partition column names that are not plain path segments.

    A name becomes the ``name=`` part of a directory, so it must be a non-empty string without
    ``/``, ``\\``, ``=``, NUL or control characters, and must not start with ``.`` or ``_``
    (pyarrow, pandas and Spark skip such directories: the rows would silently vanish on read).
    """
    for name in names:
        bad = None
        if not isinstance(name, str) or not name:
            bad = "an empty or non-string name"
        elif any(ch in name for ch in "/\\=") or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
            bad = "a '/', '\\', '=', NUL or control character"
        elif name.startswith((".", "_")):
            bad = "a leading '.' or '_' (readers skip such directories)"
        elif len(name.encode("utf-8", "surrogatepass")) > _MAX_SEGMENT_BYTES // 2:
            bad = f"more than {_MAX_SEGMENT_BYTES // 2} bytes"
        if bad:
            raise DataValidationError(
                f"Partition column {name!r} cannot name a directory: it has {bad}. "
                "Rename the column (e.g. df.rename(columns=...)) or leave it out of partition_by."
            )


def model_hash(synth) -> str:
    """SHA-256 of everything that determines a fitted Synthesizer's draws.

    Covers the torch state dict (names, dtypes, shapes, bytes) and the encoders, kinds,
    dtypes and pattern table, read from the Synthesizer's exported state.
    """
    meta, tensors, _ = synth._export_state()
    h = hashlib.sha256()
    for name, tensor in sorted(tensors.items()):
        t = tensor.detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    meta = {
        "targets": list(synth.target_vars),
        "conditions": list(synth.condition_vars),
        "kinds": meta["kinds"],
        "dtypes": meta["dtypes"],
        "encoders": meta["encoders"],
        "condition_encoder": meta["condition_encoder"],
        "patterns": meta["patterns"],
        "params": {k: repr(v) for k, v in sorted(synth.get_params(deep=False).items()) if k != "verbose"},
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


def part_name(task: int) -> str:
    """File name of task ``task``'s part in each partition."""
    return f"part-{task:06d}.parquet"


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


def write_common_metadata(root: str | os.PathLike, schema: pa.Schema) -> None:
    """Atomically writes ``root/_common_metadata``, the full Arrow schema (partition columns' types
    included, which readers otherwise infer from directory names): ``pandas.read_parquet(path,
    schema=pyarrow.parquet.read_schema(path / "_common_metadata"))``. Every task writes the same
    schema; a folder from an earlier version has none and reads as before."""
    final = Path(root) / COMMON_METADATA_NAME
    tmp = _tmp_name(final)
    try:
        pq.write_metadata(schema, tmp)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _visible_entries(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if not p.name.startswith((_TMP_PREFIX, LOCK_NAME)))


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _task_rows(spec: dict[str, Any], task: int) -> int | None:
    """Rows of task ``task``; ``None`` for a linked table (persons: as many as its households have)."""
    if spec.get("linked_to"):
        return None
    n, per = spec["n"], spec["rows_per_file"]
    return min((task + 1) * per, n) - task * per


def _data_columns(spec: dict[str, Any]) -> list[str]:
    return [c for c in spec["columns"] if c not in spec["partition_by"]]


def prepare_output(path: str | os.PathLike, spec: dict[str, Any]) -> set[int]:
    """Creates or reopens an output directory for the run described by ``spec``.

    Returns the ids of tasks already finished by an earlier attempt of the same run. Raises
    :class:`DataValidationError` when ``path`` is a file, holds files but no manifest, holds a
    manifest of another run, or holds a manifest, marker or finished part that is not what this
    run wrote (changed or damaged); all of that is checked before anything is written or removed.
    A finished task whose part file is missing is redone. Leftover temporary files of a crashed
    attempt are removed.
    """
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise DataValidationError(f"Output path {str(root)!r} exists and is not a directory.")
    manifest_path = root / MANIFEST_NAME
    has_manifest = manifest_path.exists() or manifest_path.is_symlink()
    if root.is_dir() and not has_manifest and _visible_entries(root):
        raise DataValidationError(
            f"Output path {str(root)!r} already holds files ({_visible_entries(root)[:5]}) but no microplex "
            "manifest; refusing to write into it. Choose an empty or new directory."
        )
    done: set[int] = set()
    if has_manifest:
        old = check_manifest(manifest_path, read_json(manifest_path, "the output directory"), FORMAT_VERSION)
        diff = sorted(k for k in set(old) | set(spec) if old.get(k) != spec.get(k))
        if diff:
            details = "; ".join(f"{k}: expected {_got(old.get(k))}, got {_got(spec.get(k))}" for k in diff[:4])
            raise DataValidationError(
                f"Output path {str(root)!r} holds another run (differs in {diff[:8]}: {details}); "
                "refusing to overwrite it. Choose a new directory or repeat the original call to resume."
            )
        done = set(_finished_tasks(root, spec))
    root.mkdir(parents=True, exist_ok=True)
    inside(root, TASKS_DIR).mkdir(exist_ok=True)
    for tmp in root.rglob(f"{_TMP_PREFIX}*"):
        tmp.unlink(missing_ok=True)
    if not has_manifest:
        atomic_write_json(manifest_path, {"format_version": FORMAT_VERSION, "status": "running", "spec": spec})
        _fsync_dir(root)
    return done


def _finished_tasks(root: Path, spec: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Validated markers of the finished tasks whose files are all present, by task id."""
    tasks_dir = root / TASKS_DIR
    if not tasks_dir.exists() and not tasks_dir.is_symlink():
        return {}
    if tasks_dir.is_symlink() or not tasks_dir.is_dir():
        raise DataValidationError(
            f"{str(tasks_dir)!r} must be a directory (not a link). It was changed: repeat the call with a new output directory."
        )
    n_tasks = -(-spec["n"] // spec["rows_per_file"])
    columns = _data_columns(spec)
    done = {}
    for marker in sorted(tasks_dir.iterdir()):
        if marker.name.startswith(_TMP_PREFIX):
            continue
        task = marker_task(marker.name)
        if task is None or task >= n_tasks or not is_regular(marker):
            raise DataValidationError(
                f"{str(marker)!r} is not a task marker of this run (expected task-NNNNNN.json files for tasks "
                f"0 to {n_tasks - 1}). It was changed: delete it, or repeat the call with a new output directory."
            )
        info = read_json(marker, f"the marker {str(marker)!r}")
        files = check_marker(marker, info, task, _task_rows(spec, task), spec["partition_by"])
        complete = True
        for entry in files:
            file = inside(root, entry["path"])
            if not file.exists() and not file.is_symlink():
                logger.warning("Part %s of finished task %d is missing: the task is redone.", file, task)
                complete = False
                continue
            if not is_regular(file):
                raise DataValidationError(
                    f"{str(file)!r} is not a regular file (a link or directory); it was changed: repeat the "
                    "call with a new output directory."
                )
            check_part(file, entry, columns, marker)
        if complete:
            done[task] = info
    return done


def _data_files(root: Path) -> list[str]:
    """Visible files of the dataset (no component starting with '.' or '_'), relative paths."""
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if not any(part.startswith((".", "_")) for part in rel.parts) and not p.is_dir():
            out.append(rel.as_posix())
    return sorted(out)


def finish_output(path: str | os.PathLike, spec: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Writes the final manifest (status ``complete``, every file with its rows) and returns it.

    Raises :class:`~microplex.MicroplexError` when a task has no marker, and
    :class:`DataValidationError` when the directory holds data files that no task wrote (a
    reader would mix them into the dataset).
    """
    root = Path(path)
    for tmp in root.rglob(f"{_TMP_PREFIX}*"):  # left by a worker that died and whose task was retried
        tmp.unlink(missing_ok=True)
    tasks = _finished_tasks(root, spec)
    n_tasks = -(-spec["n"] // spec["rows_per_file"])
    missing = [t for t in range(n_tasks) if t not in tasks]
    if missing:
        raise MicroplexError(
            f"Tasks {missing[:10]} of the run in {str(root)!r} did not finish; repeat the call to resume."
        )
    files = sorted((f for t in sorted(tasks) for f in tasks[t]["files"]), key=lambda f: f["path"])
    for i, col in enumerate(spec["partition_by"]):
        if files and all(f["path"].split("/")[i] == f"{col}=__HIVE_DEFAULT_PARTITION__" for f in files):
            raise DataValidationError(
                f"Partition column {col!r} is missing in every row: a dataset partitioned only by missing values "
                "cannot be read back (pyarrow cannot infer its type). Repeat the call without it in partition_by."
            )
    stray = sorted(set(_data_files(root)) - {f["path"] for f in files})
    if stray:
        raise DataValidationError(
            f"Output path {str(root)!r} holds data files that this run did not write: {stray[:5]}. "
            "Readers would mix them into the dataset; remove them and repeat the call."
        )
    manifest = {
        "format_version": FORMAT_VERSION,
        "status": "complete",
        "spec": spec,
        "rows": int(sum(info["rows"] for info in tasks.values())),
        "n_tasks": len(tasks),
        "files": files,
        **(extra or {}),
    }
    atomic_write_json(root / MANIFEST_NAME, manifest)
    _fsync_dir(root)
    return manifest


# The per-task writers live in _task_writer (they use the helpers above); re-exported here.
from ._task_writer import write_linked_task, write_task  # noqa: E402
