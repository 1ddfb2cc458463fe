"""Validation of the files a resumed run reads back: the manifest, the task markers, the parts.

They are data, not instructions: a file someone edited (or a disk damaged) must not make a run
skip work, write elsewhere or publish a wrong dataset. Every check raises one
:class:`~microplex.DataValidationError` naming the file and what was expected, before anything is
written or deleted.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from .._errors import DataValidationError
from .._files import load_json
from ..io import record_columns

__all__ = ["read_json", "check_manifest", "check_listed_files", "check_marker", "check_part", "marker_name", "marker_task",
           "part_task"]

#: Largest manifest or marker read (bytes); a real one is a few KiB per thousand files.
MAX_JSON_BYTES = 64 * 2**20

_FIX = "It was changed or damaged: repeat the call with a new output directory, or delete {what} to redo it."


def _fail(path: Path, problem: str, what: str) -> DataValidationError:
    return DataValidationError(f"{str(path)!r} {problem}. " + _FIX.format(what=what))


def read_json(path: Path, what: str) -> Any:
    """Parsed JSON of ``path`` (at most :data:`MAX_JSON_BYTES`), or one clear error."""
    try:
        size = path.stat().st_size
        regular = is_regular(path)
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror or exc})", what) from None
    if not regular:
        raise _fail(path, "is not a regular file (a link or directory)", what)
    if size > MAX_JSON_BYTES:
        raise _fail(path, f"is {size} bytes, more than the {MAX_JSON_BYTES} a microplex file can be", what)
    try:
        with open(path, "rb") as fh:
            return load_json(fh.read(MAX_JSON_BYTES + 1).decode("utf-8"), repr(str(path)))
    except DataValidationError as exc:  # a key given twice
        raise DataValidationError(f"{exc} " + _FIX.format(what=what)) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise _fail(path, f"is not valid JSON ({type(exc).__name__}: {str(exc)[:80]})", what) from None
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror or exc})", what) from None


#: Largest row count or file size a manifest or marker may record (int64, what Parquet footers hold).
MAX_COUNT = 2**63 - 1


def _is_int(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_COUNT


def check_manifest(path: Path, manifest: Any, format_version: int) -> dict[str, Any]:
    """The ``spec`` of a manifest after checking its structure (types, version, status, files)."""
    what = "the output directory"
    if not isinstance(manifest, dict):
        raise _fail(path, f"must hold a JSON object; got {type(manifest).__name__}", what)
    version = manifest.get("format_version")
    if not _is_int(version) or version != format_version:
        raise _fail(path, f"has format_version {version!r}; this microplex reads format_version {format_version}", what)
    if manifest.get("status") not in ("running", "complete"):
        raise _fail(path, f"has status {manifest.get('status')!r}; expected 'running' or 'complete'", what)
    spec = manifest.get("spec")
    if not isinstance(spec, dict):
        raise _fail(path, f"must hold a 'spec' object; got {type(spec).__name__}", what)
    if manifest["status"] == "complete":
        files = manifest.get("files")
        if not _is_int(manifest.get("rows")) or not isinstance(files, list):
            raise _fail(path, "must hold 'rows' (int >= 0) and 'files' (list) when complete", what)
        for entry in files:
            _check_entry(path, entry, what)
        paths = [e["path"] for e in files]
        if len(set(paths)) != len(paths):
            raise _fail(path, f"lists the file {next(p for p in paths if paths.count(p) > 1)[:80]!r} twice", what)
        listed = sum(e["rows"] for e in files)
        if manifest["rows"] != listed:  # read_manifest's callers take 'rows' as the dataset's size
            raise _fail(path, f"records {manifest['rows']!r} rows but lists files of {listed} rows", what)
    return spec


#: What redoes a finished dataset's task: the resume of the call that wrote it (:func:`~.writer.prepare_output`).
_REPEAT = "repeat the call that wrote the dataset (the same arguments and output directory)"


def check_listed_files(path: Path, manifest: dict[str, Any], root: Path, tasks: Path) -> None:
    """The files a complete manifest (at ``path``, structure checked) lists are in the dataset folder ``root``:
    each a regular file (no link, in no linked folder) of the bytes it records. A list naming a file that is not
    there, or of another size, described another dataset than the folder holds.

    The message says what redoes the file: a missing part is redone in place by repeating the call that wrote
    the dataset (its resume redoes a finished task whose part is missing); a part of other bytes (truncated,
    replaced) only once its task's marker in ``tasks`` is deleted too (the resume refuses a part its marker does
    not describe)."""
    if manifest.get("status") != "complete":
        return
    what = "the output directory"
    for entry in manifest["files"]:
        file = root / entry["path"]
        folders = [root / "/".join(entry["path"].split("/")[:i]) for i in range(1, entry["path"].count("/") + 1)]
        linked = any(os.path.islink(d) for d in folders)
        try:
            size = file.stat().st_size if is_regular(file) and not linked else None
        except OSError:
            size = None
        task = part_task(entry["path"].rsplit("/", 1)[-1])
        if size is None and task is not None and not linked and not file.exists() and not file.is_symlink():
            raise DataValidationError(
                f"{str(path)!r} lists the file {entry['path'][:80]!r}, which is missing from {str(root)!r}. "
                f"To redo it in place, {_REPEAT}.")
        if size is None:
            raise _fail(path, f"lists the file {entry['path'][:80]!r}, which is not a regular file in "
                        f"{str(root)!r}", what)
        if size != entry["bytes"]:
            problem = f"lists the file {entry['path'][:80]!r} of {entry['bytes']} bytes; the file in {str(root)!r} has {size}"
            if task is None:
                raise _fail(path, problem, what)
            raise DataValidationError(
                f"{str(path)!r} {problem}. It was changed or damaged: to redo it in place, delete the marker "
                f"{str(tasks / marker_name(task))!r} of its task, then {_REPEAT}; or delete the output directory "
                "to redo it all.")


def _check_entry(path: Path, entry: Any, what: str) -> None:
    if not isinstance(entry, dict) or set(entry) != {"path", "rows", "bytes"}:
        raise _fail(path, f"lists a file entry {str(entry)[:80]!r}; expected {{path, rows, bytes}}", what)
    rel = entry["path"]
    if not isinstance(rel, str) or not _is_int(entry["rows"]) or not _is_int(entry["bytes"]):
        raise _fail(path, f"lists a file entry {str(entry)[:80]!r} with wrong types", what)
    parts = rel.split("/")
    if (
        not rel or rel.startswith("/") or "\\" in rel or "\x00" in rel
        or any(p in ("", ".", "..") or p.startswith((".", "_")) for p in parts)
    ):
        raise _fail(path, f"lists the file {rel[:80]!r}, which is not a data file inside the directory", what)


def check_marker(path: Path, info: Any, task: int, rows: int | None, partition_by: list[str]) -> list[dict[str, Any]]:
    """The files of a task marker after checking it describes task ``task`` of ``rows`` rows (any number
    when ``None``: the persons of a task's households)."""
    what = f"the marker {str(path)!r}"
    if not isinstance(info, dict) or set(info) != {"task", "rows", "files"}:
        raise _fail(path, "must hold a JSON object with exactly 'task', 'rows' and 'files'", what)
    if not _is_int(info["task"]) or info["task"] != task:
        raise _fail(path, f"names task {info['task']!r}; expected {task} (from its file name)", what)
    if not _is_int(info["rows"]) or rows is not None and info["rows"] != rows:
        raise _fail(path, f"records {info['rows']!r} rows; task {task} of this run has {rows}", what)
    files = info["files"]
    if not isinstance(files, list) or not files and rows:
        raise _fail(path, "must list the task's files", what)
    name = f"part-{task:06d}.parquet"
    seen = set()
    for entry in files:
        _check_entry(path, entry, what)
        parts = entry["path"].split("/")
        keys = [p.split("=", 1)[0] for p in parts[:-1]]
        if parts[-1] != name or keys != list(partition_by) or any("=" not in p for p in parts[:-1]):
            raise _fail(path, f"lists {entry['path'][:80]!r}; task {task} writes {name} under {partition_by} directories", what)
        if entry["path"] in seen:
            raise _fail(path, f"lists {entry['path']!r} twice", what)
        seen.add(entry["path"])
    rows = info["rows"] if rows is None else rows
    if sum(e["rows"] for e in files) != rows:
        raise _fail(path, f"lists files of {sum(e['rows'] for e in files)} rows; expected {rows}", what)
    return files


_MARKER = re.compile(r"task-(\d{6,})\.json")


def marker_task(name: str) -> int | None:
    """The task id in a marker file name ``task-000003.json``, ``None`` for any other name."""
    m = _MARKER.fullmatch(name)
    return int(m.group(1)) if m else None


def marker_name(task: int) -> str:
    """The file name of task ``task``'s marker (``task-000003.json``; :func:`marker_task` reads it back)."""
    return f"task-{task:06d}.json"


_PART = re.compile(r"part-(\d{6,})\.parquet")


def part_task(name: str) -> int | None:
    """The task id in a part's file name ``part-000003.parquet`` (:func:`~.writer.part_name`), ``None`` for any
    other name."""
    m = _PART.fullmatch(name)
    return int(m.group(1)) if m else None


def check_part(file: Path, entry: dict[str, Any], columns: list[str], marker: Path) -> None:
    """Checks a finished part: its size and, from the Parquet footer, its rows and columns (the top-level columns
    of its Arrow schema: a list or struct column is one column, stored as leaves named ``element`` or by its
    fields)."""
    what = f"the marker {str(marker)!r}"
    size = file.stat().st_size
    if size != entry["bytes"]:
        raise _fail(file, f"is {size} bytes; its task recorded {entry['bytes']} (truncated or replaced?)", what)
    try:
        meta = pq.read_metadata(file)
        stored = meta.schema.to_arrow_schema().names
    except (OSError, ValueError, NotImplementedError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) on garbage
        raise _fail(file, f"is not a readable Parquet file ({str(exc)[:80]})", what) from None
    names = record_columns(stored)
    if meta.num_rows != entry["rows"] or names != list(columns):
        raise _fail(
            file, f"holds {meta.num_rows} rows of columns {names[:8]}; expected {entry['rows']} rows of {columns[:8]}", what
        )


def is_regular(path: Path) -> bool:
    """A regular file, not a link (a link could point outside the directory)."""
    return path.is_file() and not os.path.islink(path)
