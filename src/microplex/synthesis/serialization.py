"""Model files without pickle: a zip archive of JSON metadata, safetensors and Parquet.

An ``.mpx`` archive holds ``metadata.json`` (with ``format`` and ``format_version``),
``weights.safetensors`` (tensors only) and any number of ``<name>.parquet`` tables. Nothing in
it is executable on load. Archives are written to a temporary file and renamed, so a failed
save never leaves a half-written model.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
import zlib
from collections.abc import Collection
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import pyarrow.parquet as pq
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from .._files import load_json, temp_beside
from .._errors import DataValidationError

__all__ = ["FORMAT_VERSION", "READ_VERSIONS", "check_format", "check_save_path", "read_archive", "write_archive"]

#: Version of the archive layout; bumped on incompatible changes.
FORMAT_VERSION = 3
#: Versions read: version 2 (from session 73) records every parameter and each encoder's ``compact`` key, whose
#: absence a version-1 file reads as the behaviour of the files written before them; version 3
#: records the single value off the heaps of a float segment fit leaves without knots (``single_value``), which
#: version-1 and -2 files lack (they load as before).
READ_VERSIONS = (1, 2, 3)


def check_save_path(path: Any, *, allow_file: bool = False) -> None:
    """Refuses a ``path`` that a model's ``save`` cannot write to, before anything is written: one that is not a
    str or path, names a folder, lies in a folder that does not exist or is not writable (each a raw TypeError,
    AttributeError, IsADirectoryError, FileNotFoundError or PermissionError naming the temporary file otherwise),
    or is a device, pipe or socket (:func:`microplex.io.check_replaceable`: the temporary renamed onto it would
    replace it). ``allow_file``: a writable binary file object (with ``write``) is accepted as it is
    (:func:`write_archive` writes into it)."""
    from ..io import check_replaceable

    if allow_file and not isinstance(path, str | os.PathLike) and callable(getattr(path, "write", None)):
        return
    if not isinstance(path, str | os.PathLike):
        raise DataValidationError(f"The 'path' parameter must be a str or path. Got {path!r:.80} instead.")
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder) or os.path.isdir(path):
        raise DataValidationError(
            f"Cannot save to {str(path)!r}: " + ("it is a folder." if os.path.isdir(path) else f"folder {folder!r} does not exist.")
        )
    check_replaceable(path, "path")
    if not os.access(folder, os.W_OK | os.X_OK):  # the temporary is made in the folder, then renamed
        raise DataValidationError(f"Cannot save to {str(path)!r}: folder {folder!r} is not writable.")


def write_archive(
    path: str | os.PathLike | BinaryIO,
    metadata: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    tables: dict[str, pd.DataFrame] | None = None,
) -> None:
    """Atomically writes a model archive to ``path`` (or into a writable binary file object, such as
    :class:`io.BytesIO`, for a model held in memory; the bytes are those of the file)."""
    if not isinstance(path, str | os.PathLike):
        _write_zip(path, metadata, tensors, tables)
        return
    path = Path(path)
    tmp = str(temp_beside(path))  # 0666 minus the umask, like every other output (not mkstemp's 0600)
    try:
        _write_zip(tmp, metadata, tensors, tables)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _write_zip(target: str | BinaryIO, metadata: dict[str, Any], tensors: dict[str, torch.Tensor],
               tables: dict[str, pd.DataFrame] | None) -> None:
    meta = {"format_version": FORMAT_VERSION, **metadata}
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        _write_member(zf, "metadata.json", json.dumps(meta, indent=1, default=_json_default).encode())
        contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        _write_member(zf, "weights.safetensors", save_tensors(contiguous))
        for name, table in (tables or {}).items():
            buf = io.BytesIO()
            table.to_parquet(buf, index=False)
            _write_member(zf, f"{name}.parquet", buf.getvalue())


def _write_member(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    """Writes one member with a fixed timestamp, so equal models give byte-identical files."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


#: Largest decompressed size of one archive member, and of all members together, that
#: :func:`read_archive` accepts (checked on the declared sizes before reading, and while reading).
MAX_MEMBER_BYTES = 2**31
MAX_TOTAL_BYTES = 2**32
#: Largest decompressed/compressed ratio accepted for a member larger than 1 MiB (zip bombs).
MAX_COMPRESSION_RATIO = 200
#: Largest in-memory size of a table, from the Parquet footer, before it is read.
MAX_TABLE_BYTES = 2**32
_FIXED_MEMBERS = ("metadata.json", "weights.safetensors")
_DRIVE = re.compile(r"^[A-Za-z]:")


def _plain_relative(name: str) -> bool:
    """Whether a member name is a plain relative path: no absolute path, drive, backslash,
    control character, or empty, ``.`` or ``..`` component."""
    return not (
        not name or name.startswith("/") or _DRIVE.match(name) or "\\" in name
        or any(ord(ch) < 32 for ch in name) or any(part in ("", ".", "..") for part in name.split("/"))
    )


def read_archive(
    path: str | os.PathLike, expected_format: str, *, tables: Collection[str] | None = None
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, pd.DataFrame]]:
    """Reads a model archive (a path or a binary file object); checks its ``format`` and ``format_version``.

    The file is untrusted data: member names (only ``metadata.json``, ``weights.safetensors``
    and ``<table>.parquet`` with a plain relative name; exactly ``tables`` when given), declared
    and actual decompressed sizes (:data:`MAX_MEMBER_BYTES`, :data:`MAX_TOTAL_BYTES`,
    :data:`MAX_COMPRESSION_RATIO`), the JSON and safetensors encodings and each table's size
    (:data:`MAX_TABLE_BYTES`) are checked before anything is built. Any defect raises one
    :class:`~microplex.DataValidationError` naming the file. Nothing is written.
    """
    label = _label(path)
    if not isinstance(path, str | os.PathLike) and not (hasattr(path, "read") and hasattr(path, "seek")):
        raise DataValidationError(
            f"The 'path' parameter must be a str, a path or a binary file object. Got {path!r:.80} instead."
        )
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise DataValidationError(f"{label} is not a microplex model file: {exc}") from exc
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise DataValidationError(f"{label} is not a valid model file: it has duplicated members.")
        table_names = []
        for name in names:
            if name in _FIXED_MEMBERS:
                continue
            stem = name[: -len(".parquet")] if name.endswith(".parquet") else None
            if stem is None or not _plain_relative(stem):
                raise DataValidationError(
                    f"{label} is not a valid model file: unexpected member {name!r:.80} (expected metadata.json, "
                    "weights.safetensors and <table>.parquet with a plain relative name)."
                )
            table_names.append(stem)
        for required in _FIXED_MEMBERS:
            if required not in names:
                raise DataValidationError(f"{label} is not a microplex model file (no {required}).")
        if tables is not None and sorted(table_names) != sorted(tables):
            raise DataValidationError(
                f"{label} is not a valid model file: it holds tables {sorted(table_names)}, expected {sorted(tables)}."
            )
        total = 0
        for info in infos:
            total += info.file_size
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES or (
                    info.file_size > 2**20 and ratio > MAX_COMPRESSION_RATIO):
                raise DataValidationError(
                    f"{label}: member {info.filename!r} declares {info.file_size:,} bytes ({ratio:,.0f} times its "
                    f"compressed size); the limits are {MAX_MEMBER_BYTES:,} bytes per member, {MAX_TOTAL_BYTES:,} "
                    f"in all and a ratio of {MAX_COMPRESSION_RATIO}."
                )
        raw = {info.filename: _read_member(zf, info, label) for info in infos}
    try:
        meta = load_json(raw["metadata.json"].decode("utf-8"), f"{label}: metadata.json")
    except DataValidationError:  # a key given twice
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DataValidationError(f"{label}: metadata.json is not valid JSON: {exc}") from exc
    check_format(meta, expected_format, label)
    try:
        tensors = load_tensors(raw["weights.safetensors"])
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types on bad input
        raise DataValidationError(f"{label}: weights.safetensors is not a valid safetensors file: {exc}") from exc
    out_tables = {n: _read_table(raw[f"{n}.parquet"], f"{n}.parquet", label) for n in table_names}
    return meta, tensors, out_tables


def check_format(meta: Any, expected_format: str, label: str) -> None:
    """Refuses metadata that is not a JSON object of ``expected_format`` and of a version in :data:`READ_VERSIONS`."""
    if not isinstance(meta, dict):
        raise DataValidationError(f"{label}: metadata.json must hold a JSON object. Got {type(meta).__name__}.")
    if meta.get("format") != expected_format:
        raise DataValidationError(
            f"{label} holds a {meta.get('format')!r:.80} model, expected {expected_format!r}."
        )
    version = meta.get("format_version")
    if type(version) is not int or version not in READ_VERSIONS:
        raise DataValidationError(
            f"{label} has format version {version!r:.40}; this microplex reads versions "
            f"{', '.join(map(str, READ_VERSIONS))}."
        )


def check_nested_version(meta: dict[str, Any], nested: dict[str, Any], where: str, field: str) -> None:
    """Refuses a model nested in a file (a Synthesizer's condition model, a household file's inner model) whose
    ``format_version`` is not the file's: the file's version says which keys its nested models hold (one edited
    to version 1 could lack keys that version 2 requires).

    Parameters
    ----------
    meta : dict
        The file's metadata (its ``format_version`` already checked by :func:`check_format`).
    nested : dict
        The nested model's metadata.
    where : str
        The start of the message (which file, which kind of model).
    field : str
        The nested version's field as the message names it (``"field 'condition_model.format_version'"``).
    """
    version, got = meta.get("format_version"), nested.get("format_version")
    if got != version:
        raise DataValidationError(f"{where}: {field} must be the file's format_version {version!r}. "
                                  f"Got {got!r:.40} instead.")


def _label(path: Any) -> str:
    return repr(str(path)) if isinstance(path, str | os.PathLike) else repr(path)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> bytes:
    """A member's bytes, read in bounded chunks: never more than its declared size."""
    chunks, size = [], 0
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(min(2**20, info.file_size - size + 1)):
                size += len(chunk)
                if size > info.file_size:
                    raise DataValidationError(f"{label}: member {info.filename!r} is larger than it declares.")
                chunks.append(chunk)
    except DataValidationError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError, NotImplementedError, RuntimeError) as exc:
        raise DataValidationError(f"{label}: member {info.filename!r} cannot be read: {exc}") from exc
    if size != info.file_size:
        raise DataValidationError(f"{label}: member {info.filename!r} is truncated.")
    return b"".join(chunks)


def _read_table(data: bytes, member: str, label: str) -> pd.DataFrame:
    """A Parquet table, after checking from its footer that it fits :data:`MAX_TABLE_BYTES`."""
    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        meta = parquet.metadata
        declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if declared > MAX_TABLE_BYTES or meta.num_rows * max(meta.num_columns, 1) * 8 > MAX_TABLE_BYTES:
            raise DataValidationError(
                f"{label}: {member} declares {meta.num_rows:,} rows and {declared:,} bytes; the limit is "
                f"{MAX_TABLE_BYTES:,} bytes."
            )
        return _object_columns_kept(pd.read_parquet(io.BytesIO(data)), parquet.schema_arrow.pandas_metadata)
    except DataValidationError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many error types on a corrupt file
        raise DataValidationError(f"{label}: {member} is not a valid Parquet table: {exc}") from exc


def _object_columns_kept(table: pd.DataFrame, pandas_meta: Any) -> pd.DataFrame:
    """``table`` with the columns that were of dtype ``object`` when written (the ``numpy_type`` of pandas'
    Parquet metadata) back in that dtype: pandas reads text as ``str`` and object-held numbers as numbers, so
    the training conditions of a model file came back in another dtype than they were fitted in (a column of
    dtype object was drawn by ``sample`` as ``str`` after ``load``, as object before ``save``)."""
    columns = pandas_meta.get("columns") if isinstance(pandas_meta, dict) else None
    if not isinstance(columns, list):
        return table
    names = [c.get("name") for c in columns if isinstance(c, dict) and c.get("numpy_type") == "object"]
    names = [n for n in names if isinstance(n, str) and n in table.columns and table[n].dtype != object]
    return table.astype({n: object for n in names}) if names else table


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, tuple | set):
        return list(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
