"""Atomic, resumable Parquet output: hive partitions, per-task markers and a run manifest.

The data folder ``path/`` holds only the Parquet files (hive partitioning by ``partition_by``,
``path/state=CA/part-000003.parquet``); the manifest, the task markers, the schema file, the lock
and the files being written sit in the hidden side folder ``.NAME.microplex`` beside it
(:mod:`._layout`; a folder of the earlier layout, with them inside, still resumes).

Names that become paths are data: partition columns must be plain path segments (refused
otherwise, see :func:`check_partition_names`), partition values are percent-encoded as pyarrow's
hive partitioning does (``quote(str(value), safe="")``, decoded by pyarrow on read), and every
path is built by :func:`inside`, which refuses one that resolves outside the output directory.
Everything read back on resume (the manifest and the task markers) is validated before use
(:mod:`._manifest`): a tampered or damaged file raises one clear error and nothing is written.

Every file is written under a hidden temporary name (``.tmp-microplex-*.partial``) in the side
folder and renamed into place with :func:`os.replace` once complete (both folders are on one file
system: checked), so a crash or a full disk never leaves a half-written file in the data folder. A task's marker is written
after all its files are in place; a re-run of the same call skips tasks with a marker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .._errors import DataValidationError, MicroplexError
from ._layout import (
    COMMON_METADATA_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    TASKS_DIR,
    Layout,
    check_side_folder,
    dataset_parts,
    is_side_folder,
    layout,
)
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
    "discard_unstarted",
    "write_task",
    "write_linked_task",
    "finish_output",
    "check_partition_names",
    "inside",
]

logger = logging.getLogger(__name__)

_TMP_PREFIX = ".tmp-microplex-"


#: Longest path segment written (bytes); most file systems allow 255.
_MAX_SEGMENT_BYTES = 255
#: The directory name of a missing partition value (pyarrow's and Hive's).
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


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


def _tmp_name(final: Path, folder: Path | None = None) -> Path:
    """A hidden temporary name for ``final``, in ``folder`` (default: beside it)."""
    return (folder or final.parent) / f"{_TMP_PREFIX}{uuid.uuid4().hex[:12]}-{final.name}.partial"


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
    """Atomically writes the dataset's ``_common_metadata`` (in its side folder), the full Arrow schema
    (partition columns' types included, which readers otherwise infer from directory names), read by
    :func:`~microplex.scale.dataset_schema`. Every task writes the same schema; a folder from an
    earlier version may have none and reads as before."""
    final = layout(root).schema
    tmp = _tmp_name(final)
    try:
        pq.write_metadata(schema, tmp)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _visible_entries(root: Path) -> list[str]:
    """Entries of ``root`` other than temporary files, a lock and datasets' side folders."""
    return sorted(p.name for p in root.iterdir()
                  if not p.name.startswith((_TMP_PREFIX, LOCK_NAME)) and not is_side_folder(p.name))


def _remove_temporaries(lay: Layout) -> None:
    """Removes the temporary files a crashed attempt left (an earlier version wrote them beside each part)."""
    for folder in dict.fromkeys((lay.meta, lay.root)):
        if folder.is_dir():
            for tmp in folder.rglob(f"{_TMP_PREFIX}*"):
                tmp.unlink(missing_ok=True)


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
    lay = layout(path)
    root, manifest_path = lay.root, lay.manifest
    if root.exists() and not root.is_dir():
        raise DataValidationError(f"Output path {str(root)!r} exists and is not a directory.")
    check_side_folder(root, lay.meta)
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
        done = set(_finished_tasks(lay, spec))
    root.mkdir(parents=True, exist_ok=True)
    lay.meta.mkdir(exist_ok=True)
    if root.stat().st_dev != lay.meta.stat().st_dev:  # os.replace cannot move a file across file systems
        raise DataValidationError(
            f"Output path {str(root)!r} is a mount point: its side folder {str(lay.meta)!r} is on another file "
            "system, so finished files cannot be moved into it atomically. Write into a folder inside it."
        )
    _remove_temporaries(lay)
    if not has_manifest:
        atomic_write_json(manifest_path, {"format_version": FORMAT_VERSION, "status": "running", "spec": spec})
        _fsync_dir(lay.meta)
    inside(lay.meta, TASKS_DIR).mkdir(exist_ok=True)
    return done


def discard_unstarted(lay: Layout, before: set[str] | None) -> None:
    """Removes what a run wrote that failed before finishing any task (no task marker): its manifest, schema file,
    task folder and temporary files in the side folder, and the entries of the data folder that were not in
    ``before`` (its entries before the run; ``None``: the run created it, and it goes too). The lock and the side
    folder itself are left to :class:`~microplex.scale._lock.OutputLock`. Only for a run that wrote its manifest
    in this call: a folder with a finished task is kept whole, for the repeated call to resume.

    A run refused or failed before its first task finished (a bad condition value in a later block, a full disk)
    left an empty folder and a manifest saying "running", which refused the corrected call as "another run".
    """
    tasks = lay.tasks
    if lay.legacy or tasks.is_symlink() or (
            tasks.is_dir() and any(not p.name.startswith(_TMP_PREFIX) for p in tasks.iterdir())):
        return
    _remove_temporaries(lay)
    if tasks.is_dir():
        tasks.rmdir()
    for file in (lay.manifest, lay.schema):
        file.unlink(missing_ok=True)
    if lay.root.is_dir() and not lay.root.is_symlink():
        for entry in lay.root.iterdir():
            if before is None or entry.name not in before:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink(missing_ok=True)
        if before is None:
            lay.root.rmdir()


def _finished_tasks(lay: Layout, spec: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Validated markers of the finished tasks whose files are all present, by task id."""
    root, tasks_dir = lay.root, lay.tasks
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


def finish_output(path: str | os.PathLike, spec: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Writes the final manifest (status ``complete``, every file with its rows) and returns it.

    Raises :class:`~microplex.MicroplexError` when a task has no marker, and
    :class:`DataValidationError` when the directory holds entries that no task wrote (listed as readers meet
    them, :func:`~._layout.dataset_parts`: data files, other files, links to files or folders, broken links, pipes):
    a reader would mix them into the dataset, or fail on them.
    """
    lay = layout(path)
    root = lay.root
    _remove_temporaries(lay)  # left by a worker that died and whose task was retried
    tasks = _finished_tasks(lay, spec)
    n_tasks = -(-spec["n"] // spec["rows_per_file"])
    missing = [t for t in range(n_tasks) if t not in tasks]
    if missing:
        raise MicroplexError(
            f"Tasks {missing[:10]} of the run in {str(root)!r} did not finish; repeat the call to resume."
        )
    files = sorted((f for t in sorted(tasks) for f in tasks[t]["files"]), key=lambda f: f["path"])
    for i, col in enumerate(spec["partition_by"]):
        if files and all(f["path"].split("/")[i] == f"{col}={_HIVE_NULL}" for f in files):
            raise DataValidationError(
                f"Partition column {col!r} is missing in every row: a dataset partitioned only by missing values "
                "cannot be read back (pyarrow cannot infer its type). Repeat the call without it in partition_by."
            )
    parts, other = dataset_parts(root)  # every entry a reader meets, data file or not (a link to a folder)
    stray = sorted({p.relative_to(root).as_posix() for p in parts + other} - {f["path"] for f in files})
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
    atomic_write_json(lay.manifest, manifest)
    _fsync_dir(lay.meta)
    return manifest


# The per-task writers live in _task_writer (they use the helpers above); re-exported here.
from ._task_writer import write_linked_task, write_task  # noqa: E402
